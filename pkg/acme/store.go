package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certificate"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// The files under Dir(dataDir).
const (
	certFile = "certificate.crt"  // the issued chain, leaf first (0644)
	keyFile  = "certificate.key"  // its private key (0600, Prosody's user)
	metaFile = "certificate.json" // Meta (0600)
)

// maxFile caps every file read here: keys and chains are a few KiB.
const maxFile = 1 << 20

// Meta is what is kept beside the certificate: which directory issued it,
// for which hosts, and the jitter its renewal time uses.
type Meta struct {
	Directory string    `json:"directory"`
	Hosts     []string  `json:"hosts"`
	CertURL   string    `json:"cert_url,omitempty"`
	Issued    time.Time `json:"issued"`
	Jitter    float64   `json:"jitter"`
}

// Pair is the stored certificate: its files and what the renewal needs.
type Pair struct {
	Meta
	CertFile, KeyFile   string
	NotBefore, NotAfter time.Time
	Leaf                *x509.Certificate
	// Fingerprint is the lowercase hex SHA-256 of the leaf.
	Fingerprint string
}

// Stored reads the stored certificate of dataDir. An error wrapping
// fs.ErrNotExist means none was stored; another error, a damaged one (which
// Ensure replaces). It makes no network request and writes nothing.
func Stored(dataDir string) (*Pair, error) {
	dir := Dir(dataDir)
	p := &Pair{CertFile: filepath.Join(dir, certFile), KeyFile: filepath.Join(dir, keyFile)}
	raw, err := atomicfile.ReadFile(filepath.Join(dir, metaFile), atomicfile.ReadOptions{MaxBytes: maxFile})
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &p.Meta); err != nil {
		return nil, fmt.Errorf("acme: %s: %w", filepath.Join(dir, metaFile), err)
	}
	data, err := atomicfile.ReadFile(p.CertFile, atomicfile.ReadOptions{MaxBytes: maxFile})
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("acme: %s: no PEM certificate", p.CertFile)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("acme: %s: %w", p.CertFile, err)
	}
	if _, err := atomicfile.ReadFile(p.KeyFile, atomicfile.ReadOptions{MaxBytes: maxFile}); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(leaf.Raw)
	p.Leaf, p.NotBefore, p.NotAfter, p.Fingerprint = leaf, leaf.NotBefore, leaf.NotAfter, hex.EncodeToString(sum[:])
	return p, nil
}

// store writes an issued certificate, its key and Meta, all or nothing.
func (m *Manager) store(res *certificate.Resource, hosts []string) (*Pair, error) {
	meta, err := json.MarshalIndent(Meta{Directory: m.cfg.Directory, Hosts: hosts, CertURL: res.CertURL,
		Issued: m.cfg.Now().UTC(), Jitter: jitter()}, "", "  ")
	if err != nil {
		return nil, err
	}
	err = atomicfile.WriteAll([]atomicfile.File{
		{Path: filepath.Join(m.dir, keyFile), Data: res.PrivateKey, Mode: 0o600},
		{Path: filepath.Join(m.dir, certFile), Data: res.Certificate, Mode: 0o644},
		{Path: filepath.Join(m.dir, metaFile), Data: meta, Mode: 0o600},
	}, m.cfg.UID, m.cfg.GID)
	if err != nil {
		return nil, fmt.Errorf("acme: store the issued certificate in %s (PROSODY_DATA_DIR): %w", m.dir, err)
	}
	return Stored(m.cfg.DataDir)
}

// account is the ACME account: a key and, once registered, its record.
// It implements lego's registration.User.
type account struct {
	email string
	key   crypto.Signer
	reg   *acme.ExtendedAccount
}

func (a *account) GetEmail() string                       { return a.email }
func (a *account) GetRegistration() *acme.ExtendedAccount { return a.reg }
func (a *account) GetPrivateKey() crypto.Signer           { return a.key }

// accountBase is the account files' path without extension: one account
// per directory URL, so switching from staging to production registers anew.
func (m *Manager) accountBase() string {
	sum := sha256.Sum256([]byte(m.cfg.Directory))
	return filepath.Join(m.dir, "account-"+hex.EncodeToString(sum[:6]))
}

// account loads the stored account of the directory, or makes a new key
// (saved once registered).
func (m *Manager) account() (*account, error) {
	base := m.accountBase()
	a := &account{email: m.cfg.Email}
	data, err := atomicfile.ReadFile(base+".key", atomicfile.ReadOptions{MaxBytes: maxFile})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("acme: generate the account key: %w", err)
		}
		a.key = k
		return a, nil
	case err != nil:
		return nil, fmt.Errorf("acme: read the account key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("acme: %s: no PEM key; remove it to register a new account", base+".key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	signer, ok := k.(crypto.Signer)
	if err != nil || !ok {
		return nil, fmt.Errorf("acme: %s: not a PKCS#8 private key; remove it to register a new account", base+".key")
	}
	a.key = signer
	if raw, err := atomicfile.ReadFile(base+".json", atomicfile.ReadOptions{MaxBytes: maxFile}); err == nil {
		var reg acme.ExtendedAccount
		if json.Unmarshal(raw, &reg) == nil && reg.Location != "" {
			a.reg = &reg
		}
	}
	return a, nil
}

// saveAccount keeps the account key (0600, root's) and its record.
func (m *Manager) saveAccount(a *account) error {
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return fmt.Errorf("acme: encode the account key: %w", err)
	}
	rec, err := json.MarshalIndent(a.reg, "", "  ")
	if err != nil {
		return err
	}
	base := m.accountBase()
	uid, gid := m.cfg.RootUID, m.cfg.RootUID
	err = atomicfile.WriteAll([]atomicfile.File{
		{Path: base + ".key", Data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), Mode: 0o600},
		{Path: base + ".json", Data: rec, Mode: 0o600},
	}, uid, gid)
	if err != nil {
		return fmt.Errorf("acme: keep the account in %s (PROSODY_DATA_DIR): %w", m.dir, err)
	}
	return nil
}
