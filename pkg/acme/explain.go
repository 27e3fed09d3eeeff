package acme

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/go-acme/lego/v5/acme"
)

// Reason classifies why no certificate was issued; stable values.
type Reason string

// The reasons Explain gives.
const (
	ReasonUnreachable Reason = "ACME CA unreachable"
	ReasonRateLimited Reason = "rate limited by the CA"
	ReasonDNS         Reason = "DNS lookup of the host failed at the CA"
	ReasonConnection  Reason = "the CA could not connect to this server"
	ReasonWrongAnswer Reason = "the CA reached a server that did not answer the challenge"
	ReasonRejected    Reason = "the CA refuses to issue for the name"
	ReasonEABRequired Reason = "the CA requires External Account Binding"
	ReasonListen      Reason = "cannot listen for the challenge"
	ReasonRefused     Reason = "the CA refused the request"
	ReasonCAUntrusted Reason = "the ACME server's HTTPS certificate is not trusted"
	ReasonOther       Reason = "certificate order failed"
)

// Error is a failed order: why, the CA's own text, and what to do.
type Error struct {
	Reason Reason
	Hosts  []string
	// Detail is the CA's problem text (or the network error).
	Detail string
	Fix    string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("acme: ")
	if len(e.Hosts) > 0 {
		fmt.Fprintf(&b, "certificate for %s: ", strings.Join(e.Hosts, ", "))
	}
	b.WriteString(string(e.Reason))
	if e.Detail != "" {
		fmt.Fprintf(&b, " (%s)", e.Detail)
	}
	if e.Fix != "" {
		fmt.Fprintf(&b, "; fix: %s", e.Fix)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Explain turns a lego error into an *Error naming the reason and the fix.
// cfg gives the ports and directory the fixes name.
func Explain(cfg Config, hosts []string, err error) error {
	e := &Error{Reason: ReasonOther, Hosts: hosts, Detail: err.Error(), Err: err}
	var pd *acme.ProblemDetails
	var cv *tls.CertificateVerificationError
	var opErr *net.OpError
	switch {
	case errors.As(err, &pd):
		e.Detail = strings.TrimSpace(pd.Detail)
		for _, sp := range pd.SubProblems {
			e.Detail += "; " + sp.Identifier.Value + ": " + sp.Detail
		}
		explainProblem(e, pd.Type, cfg)
	case errors.As(err, &cv):
		e.Reason = ReasonCAUntrusted
		e.Fix = "for a private ACME server set PROSODY_ACME_CA_FILE to the CA that signed its HTTPS certificate"
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) ||
		(errors.As(err, &opErr) && opErr.Op == "listen"):
		e.Reason = ReasonListen
		e.Fix = fmt.Sprintf("free port %d (PROSODY_ACME_HTTP_PORT) or %d (PROSODY_ACME_TLS_PORT), or set them to ports this container may bind", cfg.HTTPPort, cfg.TLSPort)
	case errors.As(err, &opErr) || errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "unable to communicate"):
		e.Reason = ReasonUnreachable
		e.Fix = fmt.Sprintf("check PROSODY_ACME_DIRECTORY (%q) and that this container reaches it (DNS, proxy, firewall)", cfg.Directory)
	}
	return e
}

// explainProblem sets the reason and fix of an RFC 8555 problem type.
func explainProblem(e *Error, typ string, cfg Config) {
	port := fmt.Sprintf("port 80 reaching PROSODY_ACME_HTTP_PORT (%d)", cfg.HTTPPort)
	if len(cfg.Challenges) == 1 && cfg.Challenges[0] == TLSALPN01 {
		port = fmt.Sprintf("port 443 reaching PROSODY_ACME_TLS_PORT (%d)", cfg.TLSPort)
	}
	switch strings.TrimPrefix(typ, "urn:ietf:params:acme:error:") {
	case "rateLimited":
		e.Reason = ReasonRateLimited
		e.Fix = "wait for the limit to pass (the stored account and certificate are reused, so restarts do not order again); test with PROSODY_ACME_DIRECTORY=letsencrypt-staging"
	case "dns":
		e.Reason = ReasonDNS
		e.Fix = "publish A/AAAA records for every host (the domain and each component such as conference. and upload.) pointing at this server"
	case "connection":
		if dnsFailure(e.Detail) {
			// Some CAs (Pebble) report a failed lookup as a connection problem.
			e.Reason = ReasonDNS
			e.Fix = "publish A/AAAA records for every host (the domain and each component such as conference. and upload.) pointing at this server"
			return
		}
		e.Reason = ReasonConnection
		e.Fix = "make " + port + " reachable from the internet for every host (publish the port, open the firewall)"
	case "unauthorized", "incorrectResponse", "tls":
		e.Reason = ReasonWrongAnswer
		e.Fix = "point the hosts' DNS at this server, and have any proxy in front forward /.well-known/acme-challenge/ (HTTP-01) or ALPN acme-tls/1 (TLS-ALPN-01) to it; " + port
	case "rejectedIdentifier", "caa":
		e.Reason = ReasonRejected
		e.Fix = "the CA will not issue for this name (policy or a CAA record): use a name it accepts, or another CA"
	case "externalAccountRequired":
		e.Reason = ReasonEABRequired
		e.Fix = "set PROSODY_ACME_EAB_KID and PROSODY_ACME_EAB_HMAC_KEY from the CA's account page"
	default:
		e.Reason = ReasonRefused
		e.Fix = "read the CA's text above; check PROSODY_ACME_DIRECTORY and PROSODY_ACME_EMAIL"
	}
}

// dnsFailure says whether a CA's problem text is about a name lookup.
func dnsFailure(detail string) bool {
	d := strings.ToLower(detail)
	for _, w := range []string{"could not resolve", "no such host", "nxdomain", "servfail", "no valid a records", "dns problem"} {
		if strings.Contains(d, w) {
			return true
		}
	}
	return false
}
