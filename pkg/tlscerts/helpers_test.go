package tlscerts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testNow is the fixed clock of the table tests.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// keyKind names a key algorithm and its PEM encoding.
type keyKind string

const (
	rsaPKCS1     keyKind = "rsa-pkcs1"
	rsaPKCS8     keyKind = "rsa-pkcs8"
	ecdsaSEC1    keyKind = "ecdsa-sec1"
	ecdsaPKCS8   keyKind = "ecdsa-pkcs8"
	ed25519PKCS8 keyKind = "ed25519-pkcs8"
)

func newKey(t *testing.T, kind keyKind) (crypto.Signer, []byte) {
	t.Helper()
	var (
		signer crypto.Signer
		block  *pem.Block
	)
	switch kind {
	case rsaPKCS1, rsaPKCS8:
		k, e := rsa.GenerateKey(rand.Reader, 2048)
		if e != nil {
			t.Fatal(e)
		}
		signer = k
		if kind == rsaPKCS1 {
			block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case ecdsaSEC1, ecdsaPKCS8:
		k, e := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if e != nil {
			t.Fatal(e)
		}
		signer = k
		if kind == ecdsaSEC1 {
			der, e := x509.MarshalECPrivateKey(k)
			if e != nil {
				t.Fatal(e)
			}
			block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
		}
	case ed25519PKCS8:
		_, k, e := ed25519.GenerateKey(rand.Reader)
		if e != nil {
			t.Fatal(e)
		}
		signer = k
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if block == nil {
		der, e := x509.MarshalPKCS8PrivateKey(signer)
		if e != nil {
			t.Fatal(e)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return signer, pem.EncodeToMemory(block)
}

// testCA is a root and an intermediate that issue leaf certificates.
type testCA struct {
	inter    *x509.Certificate
	interKey crypto.Signer
	interPEM []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	rootKey, _ := newKey(t, ecdsaPKCS8)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: testNow.AddDate(-5, 0, 0), NotAfter: testNow.AddDate(20, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	interKey, _ := newKey(t, ecdsaPKCS8)
	interTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Intermediate R1"},
		NotBefore: testNow.AddDate(-5, 0, 0), NotAfter: testNow.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, interKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(interDER)
	return &testCA{inter: inter, interKey: interKey,
		interPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: interDER})}
}

// leafSpec describes a test certificate. Zero times mean "valid a year around testNow".
type leafSpec struct {
	names      []string
	cn         string
	notBefore  time.Time
	notAfter   time.Time
	key        keyKind // default ecdsaPKCS8
	selfSigned bool
	leafOnly   bool // no intermediate in the file ("chain missing")
}

// issue returns the certificate file (leaf plus intermediate unless
// leafOnly or selfSigned) and the key file contents.
func (ca *testCA) issue(t *testing.T, s leafSpec) (certPEM, keyPEM []byte) {
	t.Helper()
	if s.key == "" {
		s.key = ecdsaPKCS8
	}
	if s.notBefore.IsZero() {
		s.notBefore = testNow.AddDate(0, -6, 0)
	}
	if s.notAfter.IsZero() {
		s.notAfter = testNow.AddDate(0, 6, 0)
	}
	key, keyPEM := newKey(t, s.key)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: s.cn}, DNSNames: s.names,
		NotBefore: s.notBefore, NotAfter: s.notAfter, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	parent, signer := ca.inter, ca.interKey
	if s.selfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if !s.leafOnly && !s.selfSigned {
		certPEM = append(certPEM, ca.interPEM...)
	}
	return certPEM, keyPEM
}

// writeFile writes data at dir/rel with mode, creating parent directories.
func writeFile(t *testing.T, dir, rel string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// requireRoot fails a test that needs root to chown or to drop privileges.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test stages files for another user and must run as root (the CI runs tests as root)")
	}
}

// baseOptions are production options with the fixed clock, no chown.
func baseOptions(dir string, hosts ...string) Options {
	return Options{Dir: dir, Hosts: hosts, UID: -1, GID: -1, Now: func() time.Time { return testNow }}
}
