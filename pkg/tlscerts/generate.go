package tlscerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// generatedValidity is how long a generated development certificate lasts.
const generatedValidity = 365 * 24 * time.Hour

// selfSigned ensures <dataDir>/certs/selfsigned.crt and .key hold a
// self-signed ECDSA P-256 certificate covering every host, valid now and not
// within renewWithin of its end. An existing one that qualifies is kept as
// is (clients may have pinned it); otherwise a new one replaces it. Files
// are owned by uid:gid when uid >= 0; the key is 0600, the certificate 0644.
// leaf is the kept certificate as checked, nil for a new one (the caller
// reads back what was written).
func selfSigned(dataDir string, hosts []string, uid, gid int, now time.Time, renewWithin time.Duration, log *zap.Logger) (crt, key string, leaf *x509.Certificate, created bool, err error) {
	if dataDir == "" {
		return "", "", nil, false, fmt.Errorf("no data directory set to keep a generated certificate in")
	}
	dir := filepath.Join(dataDir, "certs")
	crt, key = filepath.Join(dir, "selfsigned.crt"), filepath.Join(dir, "selfsigned.key")
	if err := privateDir(dir, uid, gid); err != nil {
		return "", "", nil, false, err
	}
	leaf, why := reuseProblem(crt, key, hosts, now, renewWithin)
	if why == "" {
		// Re-assert owner and mode: the data volume may have been copied.
		for path, mode := range map[string]uint32{crt: 0o644, key: 0o600} {
			if err := fixOwnerMode(path, mode, uid, gid); err != nil {
				return "", "", nil, false, err
			}
		}
		return crt, key, leaf, false, nil
	}
	log.Info("generating self-signed certificate", zap.String("path", crt), zap.String("reason", why), zap.Strings("hosts", hosts))
	certPEM, keyPEM, err := generate(hosts, now)
	if err != nil {
		return "", "", nil, false, err
	}
	// Both or neither: a new key beside the old certificate (a full volume
	// between the two writes) would make the next start regenerate, or serve
	// a pair that does not match.
	if uid < 0 {
		uid, gid = -1, -1
	}
	if err := atomicfile.WriteAll([]atomicfile.File{{Path: key, Data: keyPEM, Mode: 0o600}, {Path: crt, Data: certPEM, Mode: 0o644}}, uid, gid); err != nil {
		return "", "", nil, false, err
	}
	return crt, key, nil, true, nil
}

// reuseProblem says why the existing generated pair cannot be kept, or ""
// and the pair's leaf certificate when it can.
func reuseProblem(crt, key string, hosts []string, now time.Time, renewWithin time.Duration) (*x509.Certificate, string) {
	chain, p := loadChain(crt)
	if p != nil {
		return nil, "no usable existing certificate"
	}
	k, p := loadKey(key)
	if p != nil {
		return nil, "no usable existing key"
	}
	for _, h := range hosts {
		if p := checkPair(crt, key, chain, k, h, now); p != nil {
			return nil, fmt.Sprintf("existing one refused for %s: %s", h, p.Reason)
		}
	}
	if chain[0].NotAfter.Sub(now) < renewWithin {
		return nil, "existing one expires soon"
	}
	return chain[0], ""
}

// generate makes the PEM certificate and PKCS#8 key of a self-signed ECDSA
// P-256 certificate for hosts (the first is the subject's common name).
func generate(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"prosody-pfe self-signed"}},
		DNSNames:              hosts,
		NotBefore:             now.Add(-time.Hour), // tolerate clients whose clock is a little behind
		NotAfter:              now.Add(generatedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, nil, fmt.Errorf("create self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encode generated key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
