package tlscerts

import (
	"fmt"
	"strings"
)

// Reason is why a certificate or key was refused. The values are stable and
// may be compared by callers (errors.As to *Error, then look at Problem.Reason).
type Reason string

// The reasons a host's certificate is refused.
const (
	ReasonNoCertificate  Reason = "no certificate covers the host"
	ReasonUnreadable     Reason = "file cannot be read"
	ReasonBadCertificate Reason = "certificate cannot be parsed"
	ReasonKeyMissing     Reason = "key file missing"
	ReasonBadKey         Reason = "key cannot be parsed"
	ReasonKeyEncrypted   Reason = "key is encrypted"
	ReasonKeyMismatch    Reason = "key does not match certificate"
	ReasonNameMismatch   Reason = "certificate names do not cover the host"
	ReasonExpired        Reason = "certificate expired"
	ReasonNotYetValid    Reason = "certificate not yet valid"
	ReasonSelfSigned     Reason = "certificate is self-signed"
	ReasonKeyNotReadable Reason = "key not readable by the prosody user"
	ReasonStaging        Reason = "staging a readable copy failed"
	ReasonGeneration     Reason = "generating a self-signed certificate failed"
	ReasonBadHost        Reason = "invalid host name"
)

// Problem is one refused certificate: for which host, which file, why, and
// what the operator can do about it. Detail never contains key material.
type Problem struct {
	Host   string
	Path   string
	Reason Reason
	Detail string
	Fix    string
	// Err is the error behind the problem when there is one (a write that
	// failed), so errors.Is sees through *Error, e.g. to atomicfile.ErrNoSpace.
	Err error
}

// String renders the problem as one line: host, path, reason, detail, fix.
func (p Problem) String() string {
	parts := make([]string, 0, 3)
	if p.Host != "" {
		parts = append(parts, "host "+p.Host)
	}
	if p.Path != "" {
		parts = append(parts, p.Path)
	}
	parts = append(parts, string(p.Reason))
	var b strings.Builder
	b.WriteString(strings.Join(parts, ": "))
	if p.Detail != "" {
		fmt.Fprintf(&b, " (%s)", p.Detail)
	}
	if p.Fix != "" {
		fmt.Fprintf(&b, "; fix: %s", p.Fix)
	}
	return b.String()
}

// Error collects the problems of every host, so an operator sees them all at
// once. It is what Prepare and Validate return for a certificate problem.
type Error struct {
	Problems []Problem
}

// Error returns one line per problem.
func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	if len(e.Problems) > 1 {
		lines = append(lines, fmt.Sprintf("tls: %d certificate problems:", len(e.Problems)))
		for _, p := range e.Problems {
			lines = append(lines, "  "+p.String())
		}
		return strings.Join(lines, "\n")
	}
	for _, p := range e.Problems {
		lines = append(lines, "tls: "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems' errors (Problem.Err), for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, p := range e.Problems {
		if p.Err != nil {
			errs = append(errs, p.Err)
		}
	}
	return errs
}

// Has reports whether any problem has the given reason.
func (e *Error) Has(r Reason) bool {
	for _, p := range e.Problems {
		if p.Reason == r {
			return true
		}
	}
	return false
}
