package tlscerts

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file is the end-to-end test with a real Prosody 13: it serves the
// certificate Prepare chose (a root-only key, staged for the prosody user),
// and after the files are replaced and Prosody gets SIGHUP, new STARTTLS
// connections see the new certificate from the same process.

// lockedBuffer collects Prosody's console log for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

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
func waitForCertificate(t *testing.T, addr, host, want string, exited <-chan struct{}, log *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for {
		select {
		case <-exited:
			t.Fatalf("prosody exited while waiting for certificate %s; log:\n%s", want, log)
		default:
		}
		cert, err := starttlsPeerCertificate(addr, host)
		if err == nil {
			if last = fingerprintOf(cert); last == want {
				return
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection presented certificate %s within 15s (last: %s); log:\n%s", want, last, log)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, bounded by the deadline above
	}
}

func TestProsodyServesPreparedCertificateAndReloadsIt(t *testing.T) {
	requireRoot(t)
	prosodyBin, err := exec.LookPath("prosody")
	if err != nil {
		t.Fatal("prosody is not installed: apt-get install -t bookworm-backports prosody")
	}
	uid, gid := prosodyIDs(t)
	const host = "example.test"
	ca := newCA(t)
	work := searchableTempDir(t)
	certs, runtime, data, empty := filepath.Join(work, "certs"), filepath.Join(work, "run"), filepath.Join(work, "data"), filepath.Join(work, "empty")
	for _, d := range []string{data, empty} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
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

	c2s, s2s := freePort(t), freePort(t)
	cfg := filepath.Join(work, "prosody.cfg.lua")
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
	writeFile(t, work, "prosody.cfg.lua", []byte(config), 0o644)

	log := &lockedBuffer{}
	cmd := exec.Command(prosodyBin, "-F", "--config", cfg)
	cmd.Dir = work
	cmd.Env = []string{"HOME=" + data, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	exited := make(chan struct{})
	go func() { // owned by this test: the cleanup below waits for it
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	pid := cmd.Process.Pid
	addr := fmt.Sprintf("127.0.0.1:%d", c2s)

	// Ready: a STARTTLS handshake presents the prepared certificate. Only
	// now may SIGHUP be sent (an early one kills Prosody).
	waitForCertificate(t, addr, host, hc.Fingerprint, exited, log)

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
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForCertificate(t, addr, host, renewed.Fingerprint, exited, log)
	if cmd.Process.Pid != pid {
		t.Fatalf("pid changed: %d -> %d", pid, cmd.Process.Pid)
	}
	select {
	case <-exited:
		t.Fatalf("prosody exited after the reload; log:\n%s", log)
	default:
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("prosody pid %d is gone after the reload: %v", pid, err)
	}
	if !strings.Contains(log.String(), "Received SIGHUP") {
		t.Errorf("prosody log does not show the reload:\n%s", log)
	}
}
