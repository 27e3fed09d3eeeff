// Package acmetest runs a real ACME CA for tests: Debian's pebble (an RFC
// 8555 test CA) and pebble-challtestsrv (a DNS server answering 127.0.0.1
// for every name), both on loopback, pebble's HTTPS on a certificate made
// here. Pebble really validates HTTP-01 and TLS-ALPN-01 on the ports given.
// It is not used by the product.
package acmetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// Options configure Start.
type Options struct {
	// HTTPPort and TLSPort are where pebble validates HTTP-01 and
	// TLS-ALPN-01 (on 127.0.0.1, the address every name resolves to).
	HTTPPort, TLSPort int
	// Validity is the lifetime of issued certificates; 0 is pebble's default.
	Validity time.Duration
}

// CA is a running pebble with its DNS server.
type CA struct {
	// Directory is the ACME directory URL.
	Directory string
	// CAFile is the PEM file of the CA that signed pebble's HTTPS
	// certificate (PROSODY_ACME_CA_FILE).
	CAFile string
	mgmt   string // pebble's management API, https://host:port
	dnsMgt string // challtestsrv's management API, http://host:port
	client *http.Client
	out    *entrypointtest.Buffer
}

// Start runs pebble-challtestsrv and pebble until the test ends (Run, with
// the stop registered as a cleanup); it fails the test when they cannot start.
func Start(t testing.TB, opts Options) *CA {
	t.Helper()
	ca, stop, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ca
}

// Run starts pebble-challtestsrv and pebble and returns once pebble's
// directory and the DNS server's management API answer. Both binaries must be
// installed (scripts/install-deps test installs them). stop kills both, waits
// for them and removes their files; the caller must call it, once (a second
// call does nothing). On error nothing is left running and stop is nil.
//
// Pebble runs with PEBBLE_VA_NOSLEEP=1 (no random 0-15 s pause before each
// validation, which no public CA adds), PEBBLE_WFE_NONCEREJECT=0 (no
// deliberately rejected nonces) and PEBBLE_AUTHZREUSE=0 (no authorization
// reused from an earlier order): every order is validated for real, at once.
func Run(opts Options) (ca *CA, stop func(), err error) {
	for _, bin := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, nil, fmt.Errorf("%s not installed (apt-get install pebble; scripts/install-deps test): %w", bin, err)
		}
	}
	ports, err := entrypointtest.FreePorts(4)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "acmetest-")
	if err != nil {
		return nil, nil, err
	}
	var procs []*exec.Cmd
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, c := range procs {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
			_ = os.RemoveAll(dir)
		})
	}
	defer func() {
		if err != nil {
			stop()
			ca, stop = nil, nil
		}
	}()
	caFile, certFile, keyFile, err := writeTLS(dir)
	if err != nil {
		return nil, nil, err
	}
	ca = &CA{
		Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0]),
		CAFile:    caFile,
		mgmt:      fmt.Sprintf("https://127.0.0.1:%d", ports[1]),
		dnsMgt:    fmt.Sprintf("http://127.0.0.1:%d", ports[3]),
		out:       &entrypointtest.Buffer{},
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ca.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	start := func(name string, env []string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = ca.out, ca.out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		return nil
	}
	dns := fmt.Sprintf("127.0.0.1:%d", ports[2])
	// Empty -http01, -https01 and -tlsalpn01 free those ports (pebble 2.4's
	// challtestsrv would listen on 5002, 5003 and 5001); no AAAA answers,
	// so pebble validates on 127.0.0.1 only.
	if err = start("pebble-challtestsrv", nil, "-dns01", dns, "-management", fmt.Sprintf("127.0.0.1:%d", ports[3]),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", ""); err != nil {
		return nil, nil, err
	}
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod":      int64(opts.Validity / time.Second),
	}}
	confFile := filepath.Join(dir, "pebble.json")
	data, _ := json.Marshal(conf)
	if err = os.WriteFile(confFile, data, 0o644); err != nil {
		return nil, nil, err
	}
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	if err = start("pebble", env, "-config", confFile, "-dnsserver", dns); err != nil {
		return nil, nil, err
	}
	if err = wait.For(20*time.Second, func() error {
		resp, err := ca.client.Get(ca.Directory)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("pebble's directory %s does not answer: %w; output:\n%s", ca.Directory, err, ca.out.String())
	}
	if err = wait.For(10*time.Second, func() error {
		resp, err := http.Post(ca.dnsMgt+"/clear-servfail", "application/json", bytes.NewReader([]byte(`{"host":"x."}`)))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("pebble-challtestsrv's management API %s does not answer: %w; output:\n%s", ca.dnsMgt, err, ca.out.String())
	}
	return ca, stop, nil
}

// Root returns the PEM root that pebble signs issued chains with, from its
// management API (it changes with every pebble start).
func (ca *CA) Root(t testing.TB) []byte {
	t.Helper()
	resp, err := ca.client.Get(ca.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: status %d, %v", resp.StatusCode, err)
	}
	return b
}

// ServFail makes the DNS server answer SERVFAIL for host (a name whose DNS
// is broken), or answer normally again when on is false.
func (ca *CA) ServFail(t testing.TB, host string, on bool) {
	t.Helper()
	path := "/set-servfail"
	if !on {
		path = "/clear-servfail"
	}
	body, _ := json.Marshal(map[string]string{"host": host + "."})
	resp, err := http.Post(ca.dnsMgt+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("challtestsrv %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("challtestsrv %s: status %d", path, resp.StatusCode)
	}
}

// Output is what pebble and the DNS server printed, for failure messages.
func (ca *CA) Output() string { return ca.out.String() }

// writeTLS makes a CA and a certificate for 127.0.0.1 and localhost signed
// by it, for pebble's HTTPS listeners; it returns the CA, certificate and
// key files.
func writeTLS(dir string) (caFile, certFile, keyFile string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acmetest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost", "pebble"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", "", err
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, b := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o644); err != nil {
			return "", "", "", err
		}
	}
	return caFile, certFile, keyFile, nil
}
