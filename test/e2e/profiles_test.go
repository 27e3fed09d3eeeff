package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The catalog's profiles and environments (config/profiles, config/environments).
var (
	catalogProfiles     = []string{"minimal", "standard", "enterprise", "development"}
	catalogEnvironments = []string{"development", "staging", "production", "testing"}
)

// profileDomain is the XMPP domain the profile tests serve. Not localhost, so that
// production does not warn, and certificates name it like a real one.
const profileDomain = "e2e.test"

// profileCA is a certificate authority made for one test: production and staging
// servers get a leaf it signed, and clients trust only it.
type profileCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemPath string // the CA certificate, for clients (--ca, RootCAs)
}

// newProfileCA creates a CA and writes its certificate into dir.
func newProfileCA(t testing.TB, dir string) *profileCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "prosody-pfe e2e test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &profileCA{cert: cert, key: key, pemPath: filepath.Join(dir, "test-ca.crt")}
	writeProfilePEM(t, ca.pemPath, 0o644, "CERTIFICATE", der)
	return ca
}

// issue writes certs/<domain>.crt (leaf then CA, as a full chain) and
// certs/<domain>.key (root-only 0600, as an operator's mounted secret would
// be: the entrypoint must stage a copy Prosody can read) into a server's
// certificate directory. The leaf names the domain and every component of it.
func (ca *profileCA) issue(t testing.TB, certsDir, domain string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: domain},
		DNSNames: []string{domain, "*." + domain, "conference." + domain, "upload." + domain,
			"pubsub." + domain, "proxy." + domain},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(12 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	if err := os.WriteFile(filepath.Join(certsDir, domain+".crt"), chain, 0o644); err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeProfilePEM(t, filepath.Join(certsDir, domain+".key"), 0o600, "PRIVATE KEY", kder)
}

func writeProfilePEM(t testing.TB, path string, mode os.FileMode, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

// needsRealCert reports whether an environment refuses self-signed
// certificates (config/environments: tls.allow_self_signed false).
func needsRealCert(environment string) bool {
	return environment == "production" || environment == "staging"
}

// newProfileServer prepares a server for profile × environment on profileDomain
// with SQLite storage: production and staging get a certificate from ca,
// the others generate their self-signed one.
func newProfileServer(t testing.TB, ca *profileCA, profile, environment string, env map[string]string) *Server {
	t.Helper()
	all := map[string]string{"PROSODY_STORAGE": "sqlite"}
	for k, v := range env {
		all[k] = v
	}
	s := NewServer(t, Options{Profile: profile, Environment: environment, Domain: profileDomain, Env: all})
	if needsRealCert(environment) {
		ca.issue(t, filepath.Join(s.Dir, "certs"), profileDomain)
	}
	return s
}

// serverCA is the PEM file a client must trust for s: the test CA, or the
// self-signed certificate the entrypoint generated in the data directory.
func serverCA(s *Server, ca *profileCA) string {
	if needsRealCert(s.Env["PROSODY_ENVIRONMENT"]) {
		return ca.pemPath
	}
	return filepath.Join(s.Dir, "data", "certs", "selfsigned.crt")
}

// c2sStreamFeatures opens a client stream to s's c2s port (with a from
// attribute when from is not empty, as clients that know their JID send it and
// FAST needs it), returns the
// <stream:features> offered before TLS, then does STARTTLS verifying the
// certificate for the domain against the PEM file caFile, and returns the
// features offered on the encrypted stream. Every read has a deadline.
func c2sStreamFeatures(t testing.TB, s *Server, caFile, from string) (plain, secure string) {
	t.Helper()
	plain, secure, _ = c2sSecureStream(t, s, caFile, from, nil)
	return plain, secure
}

// c2sSecureStream is c2sStreamFeatures that then, when then is not nil, is
// called on the encrypted stream (reads bounded by the same deadline) before
// the stream is closed; its string is returned as reply.
func c2sSecureStream(t testing.TB, s *Server, caFile, from string, then func(w io.Writer, r *bufio.Reader) string) (plain, secure, reply string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.C2S)), 5*time.Second)
	if err != nil {
		t.Fatalf("dial c2s: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	header := "<?xml version='1.0'?><stream:stream to='" + s.Domain + "' xmlns='jabber:client' "
	if from != "" {
		header += "from='" + from + "' "
	}
	header +=
		"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	if _, err := conn.Write([]byte(header)); err != nil {
		t.Fatalf("write stream header: %v", err)
	}
	r := bufio.NewReader(conn)
	plain = readStreamUntil(t, r, "</stream:features>")
	if !strings.Contains(plain, "urn:ietf:params:xml:ns:xmpp-tls") {
		t.Fatalf("c2s offers no STARTTLS before TLS: %s", plain)
	}
	if _, err := conn.Write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
		t.Fatalf("write starttls: %v", err)
	}
	if proceed := readStreamUntil(t, r, "/>"); !strings.Contains(proceed, "<proceed") {
		t.Fatalf("STARTTLS answered %q, want <proceed/>", proceed)
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("read the certificate clients should trust: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("no certificate in %s", caFile)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: s.Domain, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake verifying %s against %s: %v", s.Domain, filepath.Base(caFile), err)
	}
	if _, err := tc.Write([]byte(header)); err != nil {
		t.Fatalf("write stream header over TLS: %v", err)
	}
	tr := bufio.NewReader(tc)
	secure = readStreamUntil(t, tr, "</stream:features>")
	if then != nil {
		reply = then(tc, tr)
	}
	_, _ = tc.Write([]byte("</stream:stream>"))
	return plain, secure, reply
}

// readStreamUntil reads from r until the text read so far ends with end, failing
// on a read error (the connection's deadline bounds it) or a stream error.
func readStreamUntil(t testing.TB, r *bufio.Reader, end string) string {
	t.Helper()
	var b strings.Builder
	for !strings.HasSuffix(b.String(), end) {
		c, err := r.ReadByte()
		if err != nil {
			t.Fatalf("reading the stream until %q: %v (so far: %s)", end, err, b.String())
		}
		b.WriteByte(c)
		if strings.Contains(b.String(), "</stream:error>") {
			t.Fatalf("stream error: %s", b.String())
		}
	}
	return b.String()
}

// Every profile starts real Prosody 13 on every environment, with SQLite
// storage, and its c2s port accepts an XMPP stream: the entrypoint's own
// readiness probe says so (/readyz), and so does a stream this test opens,
// which must offer STARTTLS, complete TLS with a certificate the client
// verifies for the domain (a CA-signed chain in production and staging, the
// generated self-signed one elsewhere), and then offer SASL login. The four
// environments of one profile run at once.
func TestEveryProfileStartsOnEveryEnvironment(t *testing.T) {
	ca := newProfileCA(t, t.TempDir())
	for _, profile := range catalogProfiles {
		t.Run(profile, func(t *testing.T) {
			servers := map[string]*Server{}
			for _, environment := range catalogEnvironments {
				servers[environment] = newProfileServer(t, ca, profile, environment, verifyEnv(profile, environment)).Start()
			}
			for _, environment := range catalogEnvironments {
				t.Run(environment, func(t *testing.T) {
					s := servers[environment].In(t)
					s.WaitReady(60 * time.Second)
					st := s.Status()
					if st.Profile != profile || st.Environment != environment || st.State != "ready" || !st.Child.Running {
						t.Fatalf("/status = %+v, want profile %s, environment %s, ready with prosody running", st, profile, environment)
					}
					if !strings.Contains(s.RenderedConfig(), `driver = "SQLite3"`) {
						t.Errorf("rendered config does not use SQLite storage")
					}
					plain, secure := c2sStreamFeatures(t, s, serverCA(s, ca), "")
					if !strings.Contains(plain, "<required/>") {
						t.Errorf("STARTTLS is not required in %s: %s", environment, plain)
					}
					if !strings.Contains(secure, "urn:ietf:params:xml:ns:xmpp-sasl") || !strings.Contains(secure, "<mechanism>SCRAM-SHA-1</mechanism>") {
						t.Errorf("no SASL login with SCRAM-SHA-1 offered after TLS: %s", secure)
					}
					if bad := profileLogProblems(s.Stdout()); bad != "" {
						t.Errorf("prosody logged module or port problems:\n%s", bad)
					}
					if verifyEnvironments[environment] {
						checkVerifyPasses(t, s, serverCA(s, ca))
					}
				})
			}
		})
	}
}

// verifyEnvironments are those where every profile is also checked by
// `entrypoint verify` (a client-level self-test: a throwaway account, disco
// of the server, the account and every component, round trips).
var verifyEnvironments = map[string]bool{"development": true, "production": true}

// verifyEnv turns the admin shell on where verify runs and the profile does
// not have it (minimal): verify makes its account over the admin socket.
func verifyEnv(profile, environment string) map[string]string {
	if verifyEnvironments[environment] && profile == "minimal" {
		return map[string]string{"PROSODY_FEATURES_ADMIN_SHELL": "true"}
	}
	return nil
}

// profileLogProblems returns the lines of Prosody's log that show a module or
// listener that did not come up (Prosody keeps running after those).
func profileLogProblems(log string) string {
	var bad []string
	for _, line := range strings.Split(log, "\n") {
		for _, sign := range []string{"Unable to load module", "Error initializing module", "Failed to open server port"} {
			if strings.Contains(line, sign) {
				bad = append(bad, line)
			}
		}
	}
	return strings.Join(bad, "\n")
}

// validateResult is one line of `entrypoint validate --json`.
type validateResult struct {
	Profile        string `json:"profile"`
	Environment    string `json:"environment"`
	OK             bool   `json:"ok"`
	Error          string `json:"error"`
	Warnings       []string
	MissingModules []struct {
		Module string `json:"module"`
	} `json:"missing_modules"`
}

// runValidate runs `entrypoint validate --json` on the config tree dir and
// returns its exit code and results.
func runValidate(t *testing.T, dir string) (int, []validateResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, entrypointBin, "validate", "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PROSODY_CONFIG_DIR=" + dir, "PROSODY_DOMAIN=" + profileDomain}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("entrypoint validate: %v", err)
	}
	var res []validateResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decode validate --json (exit %d): %v\n%s\n%s", code, err, out, stderr.String())
	}
	return code, res, string(out)
}

// `entrypoint validate` (the CI gate of the catalog) passes for the whole
// tree: every profile × environment plans, renders, passes luac and
// `prosodyctl check config`, and names only modules installed here (the
// catalog's own module check is pkg/catalogtest TestEveryModuleExists). And it
// can fail: the same tree with one feature naming a module that does not
// exist is rejected, naming that module.
func TestValidatePassesForTheWholeTree(t *testing.T) {
	code, res, out := runValidate(t, filepath.Join(repoRoot, "config"))
	if code != 0 {
		t.Errorf("entrypoint validate exited %d:\n%s", code, out)
	}
	seen := map[string]bool{}
	for _, r := range res {
		seen[r.Profile+" × "+r.Environment] = true
		if !r.OK {
			t.Errorf("%s × %s: error %q, missing modules %v", r.Profile, r.Environment, r.Error, r.MissingModules)
		}
	}
	for _, p := range catalogProfiles {
		for _, e := range catalogEnvironments {
			if !seen[p+" × "+e] {
				t.Errorf("validate did not check %s × %s", p, e)
			}
		}
	}

	broken := t.TempDir()
	if err := os.CopyFS(broken, os.DirFS(filepath.Join(repoRoot, "config"))); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(broken, "features", "messaging", "archive.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var feature map[string]any
	if err := json.Unmarshal(raw, &feature); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	global := feature["global"].(map[string]any)
	global["modules"] = append(global["modules"].([]any), "e2e_no_such_module")
	raw, _ = json.MarshalIndent(feature, "", "  ")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, res, out = runValidate(t, broken)
	if code == 0 {
		t.Fatalf("validate accepted a feature naming a module that does not exist:\n%s", out)
	}
	flagged := 0
	for _, r := range res {
		for _, m := range r.MissingModules {
			if m.Module == "e2e_no_such_module" {
				flagged++
			}
		}
	}
	// minimal leaves messaging/archive out; the three other profiles have it.
	if want := 3 * len(catalogEnvironments); flagged != want {
		t.Errorf("the missing module was named in %d results, want %d (every plan with messaging/archive):\n%s", flagged, want, out)
	}
}
