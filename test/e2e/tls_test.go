package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 6 through the entrypoint binary: the certificate real Prosody 13
// presents on STARTTLS, renewal without a restart, refusal of a bad renewal.

// renewalCA signs leaf certificates for the tests.
type renewalCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

func newRenewalCA(t *testing.T) *renewalCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "prosody-pfe e2e test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &renewalCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a certificate for names; it returns the fullchain PEM (leaf then
// CA), the private key PEM and the leaf's serial.
func (ca *renewalCA) leaf(t *testing.T, serial int64, names ...string) (chain, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	chain = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.pem...)
	return chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// installLE writes version n of host's certificate the way certbot does:
// archive/<host>/fullchainN.pem and privkeyN.pem (root, 0600 key), and the
// live/<host>/ symlinks swapped atomically to point at them.
func installLE(t *testing.T, certsDir, host string, n int, chain, key []byte) {
	t.Helper()
	archive := filepath.Join(certsDir, "archive", host)
	live := filepath.Join(certsDir, "live", host)
	for _, d := range []string{archive, live} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"fullchain", chain, 0o644}, {"privkey", key, 0o600}} {
		file := fmt.Sprintf("%s%d.pem", f.name, n)
		if err := os.WriteFile(filepath.Join(archive, file), f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(live, "."+f.name+".tmp")
		os.Remove(tmp)
		if err := os.Symlink(filepath.Join("..", "..", "archive", host, file), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(live, f.name+".pem")); err != nil {
			t.Fatal(err)
		}
	}
}

// starttlsCert opens a c2s stream to domain, negotiates STARTTLS and verifies
// the server's chain against roots for domain; it returns the leaf.
func starttlsCert(port int, domain string, roots *x509.CertPool) (*x509.Certificate, error) {
	return streamStarttlsCert(port, fmt.Sprintf("to='%s' xmlns='jabber:client'", domain), domain, roots)
}

// streamStarttlsCert opens a stream with the attributes attrs (to, from,
// namespace) on port, negotiates STARTTLS and verifies the chain against
// roots for host; it returns the leaf.
func streamStarttlsCert(port int, attrs, host string, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream %s xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", attrs)
	if err := readUntilMarker(conn, "</stream:features>"); err != nil {
		return nil, fmt.Errorf("stream features: %w", err)
	}
	io.WriteString(conn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if err := readUntilMarker(conn, "<proceed"); err != nil {
		return nil, fmt.Errorf("starttls proceed: %w", err)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc.ConnectionState().PeerCertificates[0], nil
}

func readUntilMarker(r io.Reader, marker string) error {
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(marker)) {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("%w after %q", err, got)
		}
	}
	return nil
}

func productionServer(t *testing.T, env map[string]string) *Server {
	if env == nil {
		env = map[string]string{}
	}
	env["PROSODY_WATCH_DEBOUNCE"] = "50ms"
	return NewServer(t, Options{Profile: "minimal", Environment: "production", Env: env})
}

// Production with a CA-signed certificate in the Let's Encrypt layout: Prosody
// presents it on STARTTLS; a renewal reaches new connections without a restart;
// a renewal for the wrong host or with a mismatched key is refused and the
// certificate in use stays.
func TestProductionCertificateRenewal(t *testing.T) {
	t.Parallel()
	ca := newRenewalCA(t)
	s := productionServer(t, nil)
	certs := filepath.Join(s.Dir, "certs")
	chain1, key1 := ca.leaf(t, 101, "localhost")
	installLE(t, certs, "localhost", 1, chain1, key1)
	s.Start()
	s.WaitReady(20 * time.Second)
	pid := s.ProsodyPID()

	leaf, err := starttlsCert(s.C2S, "localhost", ca.pool)
	if err != nil {
		t.Fatalf("STARTTLS with the mounted certificate: %v", err)
	}
	if leaf.SerialNumber.Int64() != 101 {
		t.Fatalf("Prosody presents serial %v, want the mounted certificate's 101", leaf.SerialNumber)
	}

	presents := func(serial int64) func() bool {
		return func() bool {
			leaf, err := starttlsCert(s.C2S, "localhost", ca.pool)
			return err == nil && leaf.SerialNumber.Int64() == serial
		}
	}
	chain2, key2 := ca.leaf(t, 102, "localhost")
	installLE(t, certs, "localhost", 2, chain2, key2)
	s.WaitFor(15*time.Second, "the renewed certificate (serial 102) on new connections", presents(102))
	if got := s.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted for a renewal: pid %d, was %d", got, pid)
	}
	s.WaitFor(10*time.Second, "/status last_reload applied", func() bool {
		st := s.Status()
		return st.LastReload != nil && st.LastReload.Outcome == "applied"
	})

	wrongChain, wrongKey := ca.leaf(t, 103, "not-this-host.example")
	otherChain, _ := ca.leaf(t, 104, "localhost")
	_, strayKey := ca.leaf(t, 105, "localhost")
	bad := []struct {
		name, want string
		chain, key []byte
	}{
		{"wrong host", "localhost", wrongChain, wrongKey},
		{"mismatched key", "key", otherChain, strayKey},
	}
	for i, b := range bad {
		refusedBefore, _ := metric(t, s, "prosody_pfe_reloads_total", `outcome="refused"`)
		installLE(t, certs, "localhost", 3+i, b.chain, b.key)
		s.WaitFor(15*time.Second, b.name+": refusal counted", func() bool {
			v, _ := metric(t, s, "prosody_pfe_reloads_total", `outcome="refused"`)
			return v > refusedBefore
		})
		st := s.Status()
		if st.LastReload == nil || st.LastReload.Outcome != "refused" || !strings.Contains(st.LastReload.Error, b.want) {
			t.Fatalf("%s: /status last_reload = %+v, want refused naming %q", b.name, st.LastReload, b.want)
		}
		if !s.Logged("refused; prosody keeps") {
			t.Fatalf("%s: the refusal is not logged", b.name)
		}
		if !presents(102)() {
			t.Fatalf("%s: new connections no longer get the last good certificate (serial 102)", b.name)
		}
		if got := s.ProsodyPID(); got != pid {
			t.Fatalf("%s: prosody pid %d, was %d", b.name, got, pid)
		}
		t.Logf("%s refused: %s", b.name, st.LastReload.Error)
	}
}

// Production with no certificate at all stops before Prosody starts, exit 78,
// naming the host that lacks one.
func TestProductionWithoutCertificateExits78(t *testing.T) {
	t.Parallel()
	s := productionServer(t, nil).Start()
	code, ok := s.Wait(10 * time.Second)
	if !ok || code != 78 {
		t.Fatalf("exit = %d (exited %v), want 78", code, ok)
	}
	if errs := s.Stderr(); !strings.Contains(errs, "localhost") || !strings.Contains(strings.ToLower(errs), "certificate") {
		t.Fatalf("stderr does not name the host without a certificate:\n%s", errs)
	}
	if s.Stdout() != "" {
		t.Fatalf("prosody ran:\n%s", s.Stdout())
	}
}

// `make run`: the development server generates a certificate, and a real client
// (slixmpp) that pins it logs in over TLS.
func TestDevelopmentClientLogsInOverTLS(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Env: withAccounts(nil, "dev-pass-1", "admin@localhost")}).Start()
	s.WaitReady(20 * time.Second)
	waitAccounts(s, 1)
	res := clientScript(t, 30*time.Second, "--port", strconv.Itoa(s.C2S), "--ca", selfSignedCA(s), "login", "admin@localhost", "dev-pass-1")
	if len(res) != 1 || res[0]["ok"] != true || res[0]["tls"] != true {
		t.Fatalf("slixmpp login = %v, want ok over TLS", res)
	}
	t.Logf("slixmpp logged in over TLS (%v)", res[0]["cipher"])
	if strings.Contains(s.Stderr(), "dev-pass-1") || strings.Contains(s.Stdout(), "dev-pass-1") {
		t.Fatal("the admin password reached a log")
	}
}

// A certificate mounted into the certificates directory of a running
// development server, which started on its generated self-signed one, is
// picked up without a restart: the directory is watched, not only the files
// in use at start.
func TestCertificateAddedWhileRunning(t *testing.T) {
	t.Parallel()
	ca := newRenewalCA(t)
	s := NewServer(t, Options{Profile: "minimal", Env: map[string]string{"PROSODY_FEATURES_ADMIN_SHELL": "true"}}).Start()
	s.WaitReady(20 * time.Second)
	pid := s.ProsodyPID()
	if _, err := starttlsCert(s.C2S, "localhost", ca.pool); err == nil {
		t.Fatal("the generated certificate verified against the test CA: the test proves nothing")
	}
	chain, key := ca.leaf(t, 201, "localhost")
	installLE(t, filepath.Join(s.Dir, "certs"), "localhost", 1, chain, key)
	s.WaitFor(15*time.Second, "the added certificate (serial 201) on new connections", func() bool {
		leaf, err := starttlsCert(s.C2S, "localhost", ca.pool)
		return err == nil && leaf.SerialNumber.Int64() == 201
	})
	if got := s.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted to take the certificate: pid %d, was %d", got, pid)
	}
}
