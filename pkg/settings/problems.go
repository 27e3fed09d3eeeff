package settings

import (
	"strconv"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/suggest"
)

// Problem is one thing wrong with the environment.
type Problem struct {
	Var      string // the variable, e.g. PROSODY_STORAGE
	Value    string // the value as given; "<redacted>" for secrets; "" when not shown
	Msg      string // what is wrong
	Accepted string // what would be accepted; may be empty
}

// String renders the problem on one line, e.g.
// `PROSODY_STORAGE="mysql": not a storage backend; accepted: internal, sqlite, postgres`.
// The value is always quoted, the variable name when it is not plain (A-Z, a-z, 0-9, _), so
// no terminal escape or line break from the environment reaches a terminal or log raw.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(varName(p.Var))
	if p.Value != "" {
		b.WriteByte('=')
		b.WriteString(strconv.Quote(p.Value))
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	if p.Accepted != "" {
		b.WriteString("; accepted: ")
		b.WriteString(p.Accepted)
	}
	return b.String()
}

// Problems is the error Load returns: every problem found, in the order found (secret files
// and deprecated names, then unknown names, then values in table order). Use errors.As with a
// *Problems target to get the list. It is never empty.
type Problems struct {
	List []Problem
}

// Error prints one problem per line.
func (p *Problems) Error() string {
	lines := make([]string, len(p.List))
	for i, pr := range p.List {
		lines[i] = pr.String()
	}
	return strings.Join(lines, "\n")
}

// Warning is something accepted that the operator should change (a deprecated name, a risky
// value for the environment).
type Warning struct {
	Var string
	Msg string
}

// String renders the warning on one line (the name quoted as in Problem.String).
func (w Warning) String() string { return varName(w.Var) + ": " + w.Msg }

// varName returns an environment variable name for a message: as it is when plain
// (A-Z, a-z, 0-9, _), quoted otherwise.
func varName(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return strconv.Quote(s)
		}
	}
	return s
}

// Suggest returns the candidate nearest to name, or "" when none is a plausible
// typo (see suggest.Closest).
func Suggest(name string, candidates []string) string {
	return suggest.Closest(name, candidates)
}
