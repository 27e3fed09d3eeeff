package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/acmetest"
	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
)

// acmeDomain is the domain of the certificate benchmark; pebble-challtestsrv
// resolves it and every component of it to 127.0.0.1.
const acmeDomain = "chat.example.test"

// certCase is one way of starting production: where its certificates come
// from, and what /status must say about them.
type certCase struct {
	name   string
	source []string // the /status sources every host's certificate may have
	env    []string
	mount  bool // write a CA-signed certificate into the certificates directory
	hosts  int  // hosts the certificate covers, from /status
	cold   Sample
	warm   Sample
	tlsC   Sample // the tls stage of the cold starts
	tlsW   Sample
}

// measureACME compares time to ready in production (standard profile, SQLite)
// with a mounted certificate and with a first ACME issuance from a real ACME
// CA (pebble, validating the entrypoint's HTTP-01 answers on loopback), each
// from an empty data directory and then restarted on the same one (the ACME
// restart must reuse the stored certificate: no new order).
func (b *bench) measureACME() error {
	ports, err := entrypointtest.FreePorts(2)
	if err != nil {
		return fmt.Errorf("time to ready with ACME: %w", err)
	}
	httpPort := ports[0]
	ca, stopCA, err := acmetest.Run(acmetest.Options{HTTPPort: httpPort, TLSPort: ports[1]})
	if err != nil {
		return fmt.Errorf("time to ready with ACME: %w", err)
	}
	defer stopCA()
	base := []string{"PROSODY_ENVIRONMENT=production", "PROSODY_DOMAIN=" + acmeDomain, "PROSODY_STORAGE=sqlite"}
	mounted := &certCase{name: "mounted certificate", source: []string{"discovered", "staged"}, env: base, mount: true}
	acme := &certCase{name: "ACME (pebble)", source: []string{"acme"}, env: append(base[:len(base):len(base)],
		"PROSODY_ACME_EMAIL=admin@"+acmeDomain, "PROSODY_ACME_DIRECTORY="+ca.Directory,
		"PROSODY_ACME_CA_FILE="+ca.CAFile, "PROSODY_ACME_HTTP_PORT="+strconv.Itoa(httpPort))}
	rounds := b.n(5, 1)
	// Round 0 warms the page cache with a mounted-certificate start; it is not counted.
	if _, _, err := b.coldAndWarm(mounted, nil); err != nil {
		return fmt.Errorf("time to ready with a mounted certificate (warm-up): %w", err)
	}
	for range rounds {
		for _, c := range []*certCase{mounted, acme} {
			var check func(s *server, first bool) error
			if c == acme {
				var issued []byte
				// The restart must present the certificate issued by the first start.
				check = func(s *server, first bool) error {
					crt, err := os.ReadFile(filepath.Join(s.dir, "data", "acme", "certificate.crt"))
					if err != nil {
						return fmt.Errorf("the ACME certificate in the data volume: %w", err)
					}
					if first {
						issued = crt
					} else if !bytes.Equal(crt, issued) {
						return fmt.Errorf("the restart replaced the stored ACME certificate instead of reusing it")
					}
					return nil
				}
			}
			cold, warm, err := b.coldAndWarm(c, check)
			if err != nil {
				return fmt.Errorf("time to ready (%s): %w\npebble:\n%s", c.name, err, tailOf(ca.Output(), 2000))
			}
			c.hosts = cold.hosts
			c.cold, c.warm = append(c.cold, cold.ready), append(c.warm, warm.ready)
			c.tlsC, c.tlsW = append(c.tlsC, cold.tls), append(c.tlsW, warm.tls)
		}
	}
	b.figure(Figure{What: fmt.Sprintf("time to ready in production (/readyz 200): mounted certificate / first ACME issuance (pebble, %d hosts) / restart reusing the ACME certificate", acme.hosts),
		Result: fmt.Sprintf("%s / %s / %s", ms(mounted.cold.Median()), ms(acme.cold.Median()), ms(acme.warm.Median())),
		Target: "—", Command: "bench/run --only acme"})
	var rows strings.Builder
	for _, c := range []*certCase{mounted, acme} {
		fmt.Fprintf(&rows, "| %s | %s (%s-%s) | %s | %s (%s-%s) | %s |\n", c.name,
			ms(c.cold.Median()), ms(c.cold.Quantile(0)), ms(c.cold.Max()), ms(c.tlsC.Median()),
			ms(c.warm.Median()), ms(c.warm.Quantile(0)), ms(c.warm.Max()), ms(c.tlsW.Median()))
	}
	b.section("Time to ready with certificates", fmt.Sprintf(`Production environment, standard profile (%d hosts: %s and its components), SQLite, from exec
of the entrypoint until /readyz answers 200 (polled every 2 ms). "Empty data directory" is a new server:
secrets, SQLite database and, for ACME, the account and the first order are made during the start.
"Restart" starts the entrypoint again on the data directory the first start left. Mounted: a CA-signed
certificate for every host in the certificates directory, its key root's and 0600 (as a mounted secret
is: the entrypoint stages a copy Prosody can read). ACME: the entrypoint orders one certificate for all
hosts from pebble (Debian's RFC 8555 test CA) and answers its HTTP-01 challenges on loopback; pebble
really connects to each name (pebble-challtestsrv resolves them to 127.0.0.1) and checks the answer. The
restart must reuse the stored certificate (same bytes: no new order). %d interleaved rounds after one
warm-up start, each on new directories. Reproduce: `+"`bench/run --only acme`"+`.

| certificate | empty data directory: median (min-max) | of which tls stage | restart: median (min-max) | of which tls stage |
|---|---|---|---|---|
%s
Pebble runs with PEBBLE_VA_NOSLEEP=1 (no random pause of up to 15 s before each validation, which pebble adds
to imitate a slow CA and no public CA adds on purpose), PEBBLE_WFE_NONCEREJECT=0 (no nonces rejected on purpose)
and PEBBLE_AUTHZREUSE=0 (no authorization reused from an earlier order, as for a new account). It does not
run with PEBBLE_VA_ALWAYS_VALID, which would skip the validation. First issuances, each run: %s.
They are mostly waiting in lego, the ACME client: it validates the hosts one after another, and when
a challenge is not yet valid in the CA's answer to lego's request to validate it, lego looks at the
authorization again only after 5 s, its default when the answer has no Retry-After header (pebble
sends none). Pebble validates on loopback at once, so some hosts are already valid in that answer
and cost almost nothing, others cost 5 s: hence the spread. A public CA validates over the network
from several places, which takes longer than its answer, and Let's Encrypt sends no Retry-After
either (lego's own comment, citing Boulder's acme-divergences): expect about 5 s per host there,
plus the network.`, acme.hosts, acmeDomain, rounds, rows.String(), runList(acme.cold)))
	return nil
}

// runList is every run of s in order, for a figure whose spread matters.
func runList(s Sample) string {
	var l []string
	for _, d := range s {
		l = append(l, ms(d))
	}
	return strings.Join(l, ", ")
}

// startTiming is one start until ready: the wall time and the tls stage's
// share of it from /status.
type startTiming struct {
	ready, tls time.Duration
	hosts      int // hosts with a certificate in /status
}

// coldAndWarm starts c on new directories (cold), then again on the same
// ones (warm), and returns both timings. check, when not nil, runs after each
// start is ready (first tells which).
func (b *bench) coldAndWarm(c *certCase, check func(s *server, first bool) error) (cold, warm startTiming, err error) {
	s, err := b.newServer("standard", c.env...)
	if err != nil {
		return cold, warm, err
	}
	defer s.remove()
	if c.mount {
		if err := writeMountedCert(filepath.Join(s.dir, "certs"), acmeDomain); err != nil {
			return cold, warm, err
		}
	}
	for i, t := range []*startTiming{&cold, &warm} {
		if *t, err = b.timeToReady(s, c.source); err != nil {
			return cold, warm, err
		}
		if check != nil {
			if err := check(s, i == 0); err != nil {
				return cold, warm, err
			}
		}
	}
	return cold, warm, nil
}

// timeToReady starts the entrypoint on s, waits for /readyz 200, checks that
// every host's certificate came from one of sources, and stops it.
func (b *bench) timeToReady(s *server, sources []string) (startTiming, error) {
	t0 := time.Now()
	if err := s.startEntrypoint(b.entrypoint); err != nil {
		return startTiming{}, err
	}
	defer func() { _ = s.stop() }()
	at, err := s.waitUntil(90*time.Second, "/readyz 200", s.ready)
	if err != nil {
		return startTiming{}, err
	}
	st, err := s.status()
	if err != nil {
		return startTiming{}, err
	}
	if len(st.Certs) == 0 {
		return startTiming{}, fmt.Errorf("/status lists no certificates")
	}
	for _, c := range st.Certs {
		if !slices.Contains(sources, c.Source) {
			return startTiming{}, fmt.Errorf("/status: the certificate of %q came from %q, want %s", c.Host, c.Source, strings.Join(sources, " or "))
		}
	}
	r := startTiming{ready: at.Sub(t0), hosts: len(st.Certs)}
	for _, stg := range st.Stages {
		if stg.Name == "tls" {
			r.tls = time.Duration(stg.DurationSeconds * float64(time.Second))
		}
	}
	if err := s.stop(); err != nil {
		return startTiming{}, err
	}
	return r, nil
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// writeMountedCert writes certs/<domain>.crt (a leaf for the domain and its
// components, then the CA that signed it) and certs/<domain>.key (root's,
// 0600), as an operator's mounted certificate would be.
func writeMountedCert(certsDir, domain string) error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pfebench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: domain},
		DNSNames:  []string{domain, "conference." + domain, "upload." + domain},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	if err := os.WriteFile(filepath.Join(certsDir, domain+".crt"), chain, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(certsDir, domain+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}
