package tlscerts

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
)

// This file is the end-to-end test with a real Prosody 13: it serves the
// certificate Prepare chose (a root-only key, staged for the prosody user),
// and after the files are replaced and Prosody gets SIGHUP, new STARTTLS
// connections see the new certificate from the same process.

// readUntil reads one byte at a time (so no TLS byte is consumed by a
// buffer) until the text read contains marker followed by a '>'.
func readUntil(conn net.Conn, marker string) (string, error) {
	var got []byte
	one := make([]byte, 1)
	for {
		if _, err := conn.Read(one); err != nil {
			return string(got), fmt.Errorf("read until %q: %w (got %q)", marker, err, got)
		}
		got = append(got, one[0])
		if i := bytes.Index(got, []byte(marker)); i >= 0 && bytes.IndexByte(got[i:], '>') >= 0 {
			return string(got), nil
		}
		if bytes.Contains(got, []byte("<stream:error")) && bytes.Contains(got, []byte("</stream:error>")) {
			return string(got), fmt.Errorf("stream error before %q: %s", marker, got)
		}
	}
}

// starttlsPeerCertificate opens a c2s stream to addr for host, negotiates
// STARTTLS and returns the leaf certificate the server presented.
func starttlsPeerCertificate(addr, host string) (*x509.Certificate, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "+
		"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", host); err != nil {
		return nil, err
	}
	features, err := readUntil(conn, "</stream:features")
	if err != nil {
		return nil, err
	}
	if !strings.Contains(features, "urn:ietf:params:xml:ns:xmpp-tls") {
		return nil, fmt.Errorf("no starttls in stream features: %s", features)
	}
	if _, err := conn.Write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
		return nil, err
	}
	reply, err := readUntil(conn, "<proceed")
	if err != nil {
		return nil, err
	}
	if strings.Contains(reply, "<failure") {
		return nil, fmt.Errorf("starttls refused: %s", reply)
	}
	var peer *x509.Certificate
	tc := tls.Client(conn, &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: true, // the test CA is not in the system pool; the certificate is compared below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no peer certificate")
			}
			peer = cs.PeerCertificates[0]
			return nil
		},
	})
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	tc.Write([]byte("</stream:stream>"))
	return peer, nil
}

// waitForCertificate polls new STARTTLS connections until one presents the
// certificate with fingerprint want, or the deadline passes.
func waitForCertificate(t *testing.T, addr, host, want string, p *prosodytest.Process) {
	t.Helper()
	wait.Until(t, 15*time.Second, "a STARTTLS connection presenting certificate "+want, func() error {
		if err := p.Running(); err != nil {
			return err
		}
		cert, err := starttlsPeerCertificate(addr, host)
		if err != nil {
			return err
		}
		if got := fingerprintOf(cert); got != want {
			return fmt.Errorf("presented %s", got)
		}
		return nil
	})
}

func TestProsodyServesPreparedCertificateAndReloadsIt(t *testing.T) {
	requireRoot(t)
	uid, gid := prosodytest.IDs(t)
	const host = "example.test"
	ca := newCA(t)
	work := prosodytest.Dir(t, "data", "empty")
	certs, runtime, data, empty := filepath.Join(work, "certs"), filepath.Join(work, "run"), filepath.Join(work, "data"), filepath.Join(work, "empty")
	// A mounted secret: the key is root 0600, so Prepare must stage it.
	now := time.Now()
	writePair := func() {
		c, k := ca.issue(t, leafSpec{names: []string{host}, notBefore: now.Add(-time.Hour), notAfter: now.AddDate(0, 3, 0)})
		writeFile(t, certs, "next.crt.tmp", c, 0o644)
		writeFile(t, certs, "next.key.tmp", k, 0o600)
		// Renamed into place, as an ACME client or a secret volume does.
		for from, to := range map[string]string{"next.key.tmp": host + ".key", "next.crt.tmp": host + ".crt"} {
			if err := os.Rename(filepath.Join(certs, from), filepath.Join(certs, to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	writePair()
	opts := Options{Dir: certs, Hosts: []string{host}, RuntimeDir: runtime, DataDir: data, UID: uid, GID: gid}
	res, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	hc := res.Hosts[0]
	if hc.Source != SourceStaged {
		t.Fatalf("Source = %s, want staged (the key is root-only)", hc.Source)
	}

	c2s, s2s := prosodytest.FreePort(t), prosodytest.FreePort(t)
	config := fmt.Sprintf(`data_path = %q
log = { { levels = { min = "info" }, to = "console" } }
interfaces = { "127.0.0.1" }
c2s_ports = { %d }
s2s_ports = { %d }
certificates = %q
tls_profile = "intermediate"
modules_enabled = { "tls", "saslauth" }
VirtualHost %q
    ssl = { certificate = %q, key = %q }
`, data, c2s, s2s, empty, host, hc.CertFile, hc.KeyFile)
	p := prosodytest.Start(t, prosodytest.Options{Dir: work, Config: config, Env: []string{"HOME=" + data}})
	pid := p.PID()
	addr := fmt.Sprintf("127.0.0.1:%d", c2s)

	// Ready: a STARTTLS handshake presents the prepared certificate. Only
	// now may SIGHUP be sent (an early one kills Prosody).
	waitForCertificate(t, addr, host, hc.Fingerprint, p)

	writePair()
	if err := Validate(filepath.Join(certs, host+".crt"), filepath.Join(certs, host+".key"), host, time.Now()); err != nil {
		t.Fatalf("renewed pair: %v", err)
	}
	res2, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	renewed := res2.Hosts[0]
	if renewed.Fingerprint == hc.Fingerprint || renewed.CertFile != hc.CertFile {
		t.Fatalf("renewal: fingerprint %s -> %s, path %s -> %s; want a new certificate at the same path",
			hc.Fingerprint, renewed.Fingerprint, hc.CertFile, renewed.CertFile)
	}
	p.Signal(t, syscall.SIGHUP)
	waitForCertificate(t, addr, host, renewed.Fingerprint, p)
	if p.PID() != pid {
		t.Fatalf("pid changed: %d -> %d", pid, p.PID())
	}
	select {
	case <-p.Exited():
		t.Fatalf("prosody exited after the reload; log:\n%s", p.Output())
	default:
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("prosody pid %d is gone after the reload: %v", pid, err)
	}
	// Prosody's log comes through a pipe and may trail what the test saw.
	wait.Until(t, 10*time.Second, "prosody's log to show the reload", func() error {
		if out := p.Output(); !strings.Contains(out, "Received SIGHUP") {
			return fmt.Errorf("no SIGHUP in:\n%s", out)
		}
		return nil
	})
}
