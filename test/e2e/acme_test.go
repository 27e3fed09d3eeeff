package e2e

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/acmetest"
	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
)

// Issue 17 end to end: production with an empty certificate directory gets
// its certificates from a real ACME CA (pebble, validating the entrypoint's
// HTTP-01 answers on loopback), reuses them across a restart, renews them
// while running without restarting Prosody, and says why when it cannot.

const acmeDomain = "chat.example.test"

// acmeHosts are the hosts of the standard profile for acmeDomain.
var acmeHosts = []string{acmeDomain, "conference." + acmeDomain, "upload." + acmeDomain}

// acmeEnv points the entrypoint at ca, answering HTTP-01 on httpPort.
func acmeEnv(ca *acmetest.CA, httpPort int) map[string]string {
	return map[string]string{
		"PROSODY_ACME_EMAIL":         "admin@" + acmeDomain,
		"PROSODY_ACME_DIRECTORY":     ca.Directory,
		"PROSODY_ACME_CA_FILE":       ca.CAFile,
		"PROSODY_ACME_HTTP_PORT":     strconv.Itoa(httpPort),
		"PROSODY_ACME_RETRY_BACKOFF": "2s",
		"PROSODY_WATCH_DEBOUNCE":     "50ms",
	}
}

// s2sStarttlsCert opens a server-to-server stream to host (a component is
// reachable only that way), negotiates STARTTLS and verifies the chain
// against roots for host; it returns the leaf.
func s2sStarttlsCert(port int, host string, roots *x509.CertPool) (*x509.Certificate, error) {
	return streamStarttlsCert(port, fmt.Sprintf("to='%s' from='remote.example.net' xmlns='jabber:server'", host), host, roots)
}

// presented returns the leaf each host presents, verified against roots:
// the domain over c2s, the components over s2s.
func presented(s *Server, roots *x509.CertPool) (map[string]*x509.Certificate, error) {
	out := map[string]*x509.Certificate{}
	for _, h := range acmeHosts {
		var leaf *x509.Certificate
		var err error
		if h == acmeDomain {
			leaf, err = starttlsCert(s.C2S, h, roots)
		} else {
			leaf, err = s2sStarttlsCert(s.S2S, h, roots)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h, err)
		}
		out[h] = leaf
	}
	return out, nil
}

// acmeStatus is the part of /status this test reads.
type acmeStatus struct {
	Certs []struct {
		Host   string `json:"host"`
		Source string `json:"source"`
	} `json:"certs"`
	ACME *struct {
		LastOutcome string `json:"last_outcome"`
		LastError   string `json:"last_error"`
		Failures    int    `json:"failures"`
	} `json:"acme"`
}

func readACMEStatus(t *testing.T, s *Server) acmeStatus {
	t.Helper()
	code, body, err := s.Get("/status")
	if err != nil || code != 200 {
		t.Fatalf("GET /status: %d %v", code, err)
	}
	var st acmeStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode /status: %v", err)
	}
	return st
}

func TestACMEProduction(t *testing.T) {
	t.Parallel()
	ports, err := entrypointtest.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	httpPort := ports[0]
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: ports[1], Validity: time.Hour})
	env := withAccounts(acmeEnv(ca, httpPort), "acme-pass-1", "admin@"+acmeDomain)
	opts := Options{Profile: "standard", Environment: "production", Domain: acmeDomain, Env: env}
	s := NewServer(t, opts).Start()
	s.WaitReady(90 * time.Second)

	// Pebble's root changes with every pebble start: fetch it.
	rootPEM := ca.Root(t)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	rootFile := filepath.Join(t.TempDir(), "pebble-root.pem")
	if err := os.WriteFile(rootFile, rootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	first, err := presented(s, roots)
	if err != nil {
		t.Fatalf("the ACME certificate does not verify against pebble's root: %v", err)
	}
	st := readACMEStatus(t, s)
	if len(st.Certs) != len(acmeHosts) {
		t.Fatalf("/status certs = %+v, want one per host", st.Certs)
	}
	for _, c := range st.Certs {
		if c.Source != "acme" {
			t.Errorf("/status: %s's certificate source %q, want acme", c.Host, c.Source)
		}
	}
	// A real client (slixmpp) verifies the chain against pebble's root and logs in.
	waitAccounts(s, 1)
	res := clientScript(t, 30*time.Second, "--port", strconv.Itoa(s.C2S), "--ca", rootFile, "login", "admin@"+acmeDomain, "acme-pass-1")
	if len(res) != 1 || res[0]["ok"] != true || res[0]["tls"] != true {
		t.Fatalf("slixmpp login against pebble's root = %v, want ok over TLS", res)
	}
	if code := s.Stop(15 * time.Second); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}

	// Restart on the same volume: the stored certificate is reused (no new
	// order), with a renew-before that makes it due 25s after the restart.
	leaf := first[acmeDomain]
	env["PROSODY_ACME_RENEW_BEFORE"] = (time.Until(leaf.NotAfter) - 25*time.Second).Round(time.Second).String()
	opts.Dir = s.Dir
	s2 := NewServer(t, opts).Start()
	s2.WaitReady(60 * time.Second)
	again, err := presented(s2, roots)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if again[acmeDomain].SerialNumber.Cmp(leaf.SerialNumber) != 0 || strings.Contains(s2.Stderr(), "acme certificate issued") {
		t.Fatal("the restart ordered a new certificate; want the stored one reused")
	}
	if !s2.Logged("acme certificate reused") {
		t.Fatal("the restart does not log the reuse")
	}
	pid := s2.ProsodyPID()

	// The forced renewal: installed without restarting Prosody, and every
	// host presents the new certificate to new connections.
	s2.WaitFor(90*time.Second, "a renewed certificate on every host", func() bool {
		now, err := presented(s2, roots)
		if err != nil {
			return false
		}
		for _, h := range acmeHosts {
			if now[h].SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return false
			}
		}
		return true
	})
	if got := s2.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted for the renewal: pid %d, was %d", got, pid)
	}
	if v, _ := metric(t, s2, "prosody_pfe_acme_renewals_total", `outcome="success"`); v < 1 {
		t.Errorf("prosody_pfe_acme_renewals_total{outcome=\"success\"} = %v, want 1", v)
	}
	renewed, _ := presented(s2, roots)
	res = clientScript(t, 30*time.Second, "--port", strconv.Itoa(s2.C2S), "--ca", rootFile, "login", "admin@"+acmeDomain, "acme-pass-1")
	if len(res) != 1 || res[0]["ok"] != true {
		t.Fatalf("slixmpp login after the renewal = %v", res)
	}

	// The next renewal fails (the domain's DNS is broken): the renewed
	// certificate stays in use, the failure is counted and shown with its
	// reason, and it is retried.
	for _, h := range acmeHosts {
		ca.ServFail(t, h, true)
	}
	s2.WaitFor(2*time.Minute, "two failed renewals counted", func() bool {
		v, _ := metric(t, s2, "prosody_pfe_acme_renewals_total", `outcome="failure"`)
		return v >= 2
	})
	st = readACMEStatus(t, s2)
	if st.ACME == nil || st.ACME.LastOutcome != "failure" || !strings.Contains(st.ACME.LastError, "DNS") {
		t.Fatalf("/status acme = %+v, want the failure with its DNS reason", st.ACME)
	}
	// Every host still presents a certificate that verifies: a failed
	// renewal never removes or breaks the one in use. (Which one: pkg/acme's
	// tests hold that a failure keeps exactly the current certificate; here
	// an order already under way when the DNS broke may still complete.)
	still, err := presented(s2, roots)
	if err != nil {
		t.Fatalf("after failed renewals the certificate in use broke: %v", err)
	}
	if still[acmeDomain].SerialNumber.Cmp(renewed[acmeDomain].SerialNumber) != 0 {
		t.Logf("a renewal completed between the failures (serial %s after %s)", still[acmeDomain].SerialNumber, renewed[acmeDomain].SerialNumber)
	}
	if got := s2.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted after a failed renewal: pid %d, was %d", got, pid)
	}
}

// At start in production, an order the CA cannot complete stops the
// entrypoint with exit 78 and the reason, before Prosody runs.
func TestACMEFailureAtStartExits78(t *testing.T) {
	t.Parallel()
	ports, err := entrypointtest.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: ports[0], TLSPort: ports[1]})
	ca.ServFail(t, "broken."+acmeDomain, true)
	for _, tc := range []struct {
		name, domain string
		env          map[string]string
		want         string
	}{
		{"CA unreachable", acmeDomain, map[string]string{"PROSODY_ACME_DIRECTORY": fmt.Sprintf("https://127.0.0.1:%d/dir", ports[2])}, "ACME CA unreachable"},
		// The entrypoint answers on a port the CA does not reach.
		{"challenge refused", acmeDomain, map[string]string{"PROSODY_ACME_HTTP_PORT": strconv.Itoa(ports[2])}, "the CA could not connect to this server"},
		{"wrong DNS", "broken." + acmeDomain, nil, "DNS lookup of the host failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := acmeEnv(ca, ports[0])
			for k, v := range tc.env {
				env[k] = v
			}
			s := NewServer(t, Options{Profile: "minimal", Environment: "production", Domain: tc.domain, Env: env}).Start()
			code, ok := s.Wait(60 * time.Second)
			if !ok || code != 78 {
				t.Fatalf("exit = %d (exited %v), want 78", code, ok)
			}
			if errs := s.Stderr(); !strings.Contains(errs, tc.want) || !strings.Contains(errs, "fix:") {
				t.Fatalf("stderr does not say %q with a fix:\n%s", tc.want, tail(errs, 3000))
			}
			if s.Stdout() != "" {
				t.Fatalf("prosody ran:\n%s", s.Stdout())
			}
		})
	}
}
