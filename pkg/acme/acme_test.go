package acme_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/prosody-pfe/prosody-pfe/internal/acmetest"
	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
	"github.com/prosody-pfe/prosody-pfe/pkg/acme"
)

// hosts are a domain and its components. Every order validates each name
// in turn (lego polls each authorization for 5s when the CA sends no
// Retry-After), so the tests that do not need them all use one.
var hosts = []string{"chat.example.test", "conference.chat.example.test", "upload.chat.example.test"}

func ports(t *testing.T, n int) []int {
	t.Helper()
	p, err := entrypointtest.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func config(t *testing.T, ca *acmetest.CA, dataDir string, httpPort, tlsPort int) acme.Config {
	return acme.Config{
		Directory: ca.Directory, CAFile: ca.CAFile, Email: "admin@chat.example.test",
		ListenHost: "127.0.0.1", HTTPPort: httpPort, TLSPort: tlsPort,
		DataDir: dataDir, UID: -1, GID: -1, RootUID: -1, Logger: zaptest.NewLogger(t),
	}
}

// verify checks the stored chain against pebble's root for each of hosts.
func verify(t *testing.T, ca *acmetest.CA, dataDir string, hosts ...string) *acme.Pair {
	t.Helper()
	p, err := acme.Stored(dataDir)
	if err != nil {
		t.Fatalf("stored certificate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.Root(t))
	inter := x509.NewCertPool()
	data, _ := os.ReadFile(p.CertFile)
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, _ := x509.ParseCertificate(b.Bytes)
		inter.AddCert(c)
	}
	for _, h := range hosts {
		if _, err := p.Leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("chain for %s does not verify against pebble's root: %v", h, err)
		}
	}
	return p
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestHTTP01IssuesStoresPrivatelyAndReuses: pebble validates the HTTP-01
// answers on loopback; the chain verifies for every host; the key files are
// private; a second start reuses the stored certificate without an order.
func TestHTTP01IssuesStoresPrivatelyAndReuses(t *testing.T) {
	t.Parallel()
	p := ports(t, 2)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: p[0], TLSPort: p[1]})
	data := t.TempDir()
	m, err := acme.New(config(t, ca, data, p[0], p[1]))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	issued, err := m.Ensure(ctx, hosts)
	if err != nil || !issued {
		t.Fatalf("Ensure = %v, %v; want a new certificate\n%s", issued, err, ca.Output())
	}
	first := verify(t, ca, data, hosts...)
	dir := acme.Dir(data)
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("%s mode %o, want 0700", dir, got)
	}
	if got := mode(t, first.KeyFile); got != 0o600 {
		t.Errorf("certificate key mode %o, want 0600", got)
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "account-*.key"))
	if len(keys) != 1 || mode(t, keys[0]) != 0o600 {
		t.Errorf("account keys %v: want one, mode 0600", keys)
	}

	again, err := acme.New(config(t, ca, data, p[0], p[1]))
	if err != nil {
		t.Fatal(err)
	}
	issued, err = again.Ensure(ctx, hosts)
	if err != nil || issued {
		t.Fatalf("second Ensure = %v, %v; want the stored certificate reused", issued, err)
	}
	if second := verify(t, ca, data, hosts...); second.Fingerprint != first.Fingerprint {
		t.Error("the restart ordered a new certificate; want the stored one reused")
	}
	// A host added to the plan needs a certificate that covers it.
	issued, err = again.Ensure(ctx, append(hosts, "pubsub.chat.example.test"))
	if err != nil || !issued {
		t.Fatalf("Ensure with a new host = %v, %v; want a new certificate", issued, err)
	}
}

// TestTLSALPN01Issues: only TLS-ALPN-01, validated by pebble on the TLS port.
func TestTLSALPN01Issues(t *testing.T) {
	t.Parallel()
	p := ports(t, 2)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: p[0], TLSPort: p[1]})
	data := t.TempDir()
	cfg := config(t, ca, data, p[0], p[1])
	cfg.Challenges = []string{acme.TLSALPN01}
	m, err := acme.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if issued, err := m.Ensure(ctx, hosts[1:2]); err != nil || !issued {
		t.Fatalf("Ensure = %v, %v\n%s", issued, err, ca.Output())
	}
	verify(t, ca, data, hosts[1])
}

// TestFailuresSayWhy: each way an order fails at start names its reason,
// with the CA's text where it gave one.
func TestFailuresSayWhy(t *testing.T) {
	t.Parallel()
	p := ports(t, 5)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: p[0], TLSPort: p[1]})
	// Something else answers on the port pebble validates: a server that
	// does not know the token (DNS points at another server).
	other := &http.Server{Addr: "127.0.0.1:" + strconv.Itoa(p[2]), Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	l, err := net.Listen("tcp", other.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go other.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { other.Close() })
	caOther := acmetest.Start(t, acmetest.Options{HTTPPort: p[2], TLSPort: p[1]})

	for _, tc := range []struct {
		name  string
		host  string
		ca    *acmetest.CA
		edit  func(*acme.Config)
		setup func(t *testing.T)
		want  acme.Reason
	}{
		{name: "CA unreachable", ca: ca, edit: func(c *acme.Config) { c.Directory = fmt.Sprintf("https://127.0.0.1:%d/dir", p[3]) },
			want: acme.ReasonUnreachable},
		{name: "CA not trusted", ca: ca, edit: func(c *acme.Config) { c.CAFile = "" }, want: acme.ReasonCAUntrusted},
		// The entrypoint answers on another port than the one the CA
		// reaches: port 80 not forwarded.
		{name: "challenge port unreachable", ca: ca, edit: func(c *acme.Config) { c.HTTPPort = p[3] }, want: acme.ReasonConnection},
		{name: "another server answers", ca: caOther, edit: func(c *acme.Config) { c.HTTPPort = p[4] }, want: acme.ReasonWrongAnswer},
		{name: "wrong DNS", host: "broken-dns.example.test", ca: ca, setup: func(t *testing.T) {
			ca.ServFail(t, "broken-dns.example.test", true)
		}, want: acme.ReasonDNS},
	} {
		// One after another: the CA validates every order on the same port,
		// where a parallel subtest's challenge server would answer instead.
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host
			if host == "" {
				host = hosts[0]
			}
			cfg := config(t, tc.ca, t.TempDir(), p[0], p[1])
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			if tc.setup != nil {
				tc.setup(t)
			}
			m, err := acme.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = m.Ensure(ctx, []string{host})
			var ae *acme.Error
			if !errors.As(err, &ae) || ae.Reason != tc.want {
				t.Fatalf("Ensure error = %v; want reason %q", err, tc.want)
			}
			if ae.Fix == "" {
				t.Errorf("no fix in %v", err)
			}
			if _, err := acme.Stored(cfg.DataDir); err == nil {
				t.Error("a certificate was stored after a failed order")
			}
		})
	}
}

type observer struct {
	mu       sync.Mutex
	outcomes []string
	errs     []error
}

func (o *observer) ACMERenewal(outcome string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, outcome)
	o.errs = append(o.errs, err)
}
func (o *observer) ACMENextRenewal(time.Time) {}

func (o *observer) count(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, x := range o.outcomes {
		if x == outcome {
			n++
		}
	}
	return n
}

// TestRunRenewsAndRetries: with a renew-before close to the lifetime, Run
// renews and calls back; when the CA cannot validate (DNS broken) it keeps
// the stored certificate, reports each failure and retries with backoff,
// and renews once the DNS is fixed.
func TestRunRenewsAndRetries(t *testing.T) {
	t.Parallel()
	host := hosts[0]
	p := ports(t, 2)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: p[0], TLSPort: p[1], Validity: time.Hour})
	data := t.TempDir()
	cfg := config(t, ca, data, p[0], p[1])
	cfg.RenewBefore = time.Hour - 3*time.Second // due 3s (less jitter) after issuance
	cfg.RetryBackoff = time.Second
	m, err := acme.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := m.Ensure(ctx, []string{host}); err != nil {
		t.Fatal(err)
	}
	first := verify(t, ca, data, host)
	obs := &observer{}
	renewed := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, obs, func() { renewed <- struct{}{} }) }()

	select {
	case <-renewed:
	case <-time.After(time.Minute):
		t.Fatalf("no renewal within a minute\n%s", ca.Output())
	}
	second := verify(t, ca, data, host)
	if second.Fingerprint == first.Fingerprint {
		t.Fatal("renewed callback, but the stored certificate is the same")
	}

	ca.ServFail(t, host, true)
	// An order that started before the DNS broke may still succeed: count
	// from the first failure on.
	wait.Until(t, time.Minute, "a failed renewal reported", func() error {
		if obs.count("failure") < 1 {
			return errors.New("no failure yet")
		}
		return nil
	})
	kept, _ := acme.Stored(data)
	successes := obs.count("success")
	wait.Until(t, time.Minute, "two more failed renewals (retries) reported", func() error {
		if n := obs.count("failure"); n < 3 {
			return fmt.Errorf("%d failures", n)
		}
		return nil
	})
	if p, _ := acme.Stored(data); p == nil || kept == nil || p.Fingerprint != kept.Fingerprint || obs.count("success") != successes {
		t.Error("a failed renewal changed the stored certificate")
	}
	obs.mu.Lock()
	var ae *acme.Error
	if !errors.As(obs.errs[len(obs.errs)-1], &ae) || ae.Reason != acme.ReasonDNS {
		t.Errorf("failure reported as %v; want reason %q", obs.errs[len(obs.errs)-1], acme.ReasonDNS)
	}
	obs.mu.Unlock()
	ca.ServFail(t, host, false)
	select {
	case <-renewed:
	case <-time.After(time.Minute):
		t.Fatal("no renewal after the DNS was fixed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil when its context ends", err)
	}
}
