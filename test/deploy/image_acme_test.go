//go:build docker

package deploy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/acmetest"
)

// Issue 17 in the image: a production container with no mounted certificate and
// PROSODY_ACME_* pointed at a real ACME CA (pebble on the host network) gets its
// certificate by HTTP-01, becomes healthy by its own HEALTHCHECK, and serves the
// certificate, which verifies against pebble's root.
func TestImageACME(t *testing.T) {
	img := testImage(t)
	const domain = "chat.example.test"
	httpPort, tlsPort := freePort(t), freePort(t)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
	ports := newServerPorts(t)
	name := uniqueName("pfe-test-acme-")
	env := ports.env()
	for k, v := range map[string]string{
		"PROSODY_ENVIRONMENT":    "production",
		"PROSODY_PROFILE":        "minimal",
		"PROSODY_DOMAIN":         domain,
		"PROSODY_ACME_EMAIL":     "admin@" + domain,
		"PROSODY_ACME_DIRECTORY": ca.Directory,
		"PROSODY_ACME_CA_FILE":   "/run/acme-ca.pem",
		"PROSODY_ACME_HTTP_PORT": strconv.Itoa(httpPort),
	} {
		env[k] = v
	}
	args := []string{"run", "--detach", "--name", name, "--network", "host",
		"--volume", ca.CAFile + ":/run/acme-ca.pem:ro",
		"--health-interval", "500ms", "--health-timeout", "3s", "--health-retries", "3"}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--env", k+"="+env[k])
	}
	mustDocker(t, 60*time.Second, append(args, img)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(containerLogs(t, name))
			t.Log(ca.Output())
		}
		_, _ = dockerCmd(t, 60*time.Second, "rm", "--force", "--volumes", name)
	})
	d := waitHealthy(t, name, 90*time.Second)
	t.Logf("%s: healthy %s after docker run returned, with a certificate ordered from pebble", name, d.Round(time.Millisecond))

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.Root(t))
	if err := starttlsVerify(ports.C2S, domain, roots); err != nil {
		t.Fatalf("the container's certificate does not verify against pebble's root: %v", err)
	}
}

// starttlsVerify negotiates STARTTLS on a c2s stream to domain and verifies
// the server's chain against roots for domain.
func starttlsVerify(port int, domain string, roots *x509.CertPool) error {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", domain)
	for _, marker := range []string{"</stream:features>", "<proceed"} {
		if err := readUntil(conn, marker); err != nil {
			return err
		}
		if marker == "</stream:features>" {
			_, _ = io.WriteString(conn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		}
	}
	return tls.Client(conn, &tls.Config{ServerName: domain, RootCAs: roots, MinVersion: tls.VersionTLS12}).Handshake()
}

func readUntil(r io.Reader, marker string) error {
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(marker)) {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("%w before %q (got %q)", err, marker, got)
		}
	}
	return nil
}
