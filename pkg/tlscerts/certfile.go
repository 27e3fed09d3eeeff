package tlscerts

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// timeLayout is how dates appear in problems and warnings.
const timeLayout = "2006-01-02 15:04:05Z07:00"

// maxPEMBytes caps a certificate or key file: a chain is a few KiB.
const maxPEMBytes = 1 << 20

// loadChain reads every CERTIFICATE block of a PEM file; the first is the leaf.
// The returned problem has no Host; callers fill it in.
func loadChain(path string) ([]*x509.Certificate, *Problem) {
	data, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{MaxBytes: maxPEMBytes})
	if err != nil {
		return nil, &Problem{Path: path, Reason: ReasonUnreadable, Detail: err.Error(),
			Fix: "make the certificate file readable by the entrypoint"}
	}
	var chain []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &Problem{Path: path, Reason: ReasonBadCertificate, Detail: err.Error(),
				Fix: "replace the file with a PEM certificate (-----BEGIN CERTIFICATE-----)"}
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, &Problem{Path: path, Reason: ReasonBadCertificate, Detail: "no PEM CERTIFICATE block",
			Fix: "replace the file with a PEM certificate (-----BEGIN CERTIFICATE-----)"}
	}
	return chain, nil
}

// loadKey reads the first private key block of a PEM file: PKCS#1 RSA,
// PKCS#8 (RSA, ECDSA, Ed25519) or SEC1 EC. The detail of a problem never
// contains key bytes.
func loadKey(path string) (crypto.Signer, *Problem) {
	data, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{MaxBytes: maxPEMBytes})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Problem{Path: path, Reason: ReasonKeyMissing,
				Fix: "put the private key next to the certificate (.crt -> .key, fullchain -> privkey)"}
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, &Problem{Path: path, Reason: ReasonKeyNotReadable, Detail: err.Error(),
				Fix: "make the key readable by the prosody user's group without opening it to everyone (chgrp GROUP KEY; chmod 0640 KEY), or start the entrypoint as root so it stages a private copy"}
		}
		return nil, &Problem{Path: path, Reason: ReasonUnreadable, Detail: err.Error(),
			Fix: "make the key file a readable regular file"}
	}
	badKey := func(detail string) (crypto.Signer, *Problem) {
		return nil, &Problem{Path: path, Reason: ReasonBadKey, Detail: detail,
			Fix: "use an unencrypted PEM key: RSA (PKCS#1 or PKCS#8), ECDSA (SEC1 or PKCS#8) or Ed25519 (PKCS#8)"}
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return badKey("no PEM private key block")
		}
		var key any
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, &Problem{Path: path, Reason: ReasonKeyEncrypted,
				Fix: "Prosody cannot ask for a passphrase: decrypt it (openssl pkey -in KEY -out KEY.plain)"}
		default:
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, &Problem{Path: path, Reason: ReasonKeyEncrypted,
					Fix: "Prosody cannot ask for a passphrase: decrypt it (openssl pkey -in KEY -out KEY.plain)"}
			}
			continue
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, &Problem{Path: path, Reason: ReasonKeyEncrypted,
				Fix: "Prosody cannot ask for a passphrase: decrypt it (openssl pkey -in KEY -out KEY.plain)"}
		}
		if err != nil {
			return badKey(fmt.Sprintf("%s block: %v", block.Type, err))
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return badKey(fmt.Sprintf("unsupported key type %T", key))
		}
	}
}

// keyMatches reports whether the private key belongs to the certificate.
func keyMatches(leaf *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(leaf.PublicKey)
}

// certNames is what a certificate is valid for: its DNS SANs, or its common
// name when it has no DNS SAN (as Prosody's util.x509 does).
func certNames(c *x509.Certificate) []string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames
	}
	if c.Subject.CommonName != "" {
		return []string{c.Subject.CommonName}
	}
	return nil
}

// matchName matches one certificate name against a host: exactly, or a
// wildcard "*.rest" covering exactly one more label ("a.rest", not "a.b.rest").
// It reports whether the match was exact.
func matchName(pattern, host string) (ok, exact bool) {
	pattern = strings.TrimSuffix(strings.ToLower(pattern), ".")
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if pattern == host {
		return true, true
	}
	if rest, isWild := strings.CutPrefix(pattern, "*."); isWild && rest != "" {
		i := strings.IndexByte(host, '.')
		return i > 0 && host[i+1:] == rest, false
	}
	return false, false
}

// covers reports whether any of the certificate's names covers host, and
// whether one does so exactly (not by wildcard).
func covers(c *x509.Certificate, host string) (ok, exact bool) {
	for _, n := range certNames(c) {
		if m, e := matchName(n, host); m {
			ok = true
			exact = exact || e
		}
	}
	return ok, exact
}

// isSelfSigned reports whether the certificate is signed by its own key.
func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// checkPair runs the checks that make a certificate unusable for host: key
// match, names, validity period. It returns nil when the pair is usable.
func checkPair(certPath, keyPath string, chain []*x509.Certificate, key crypto.Signer, host string, now time.Time) *Problem {
	leaf := chain[0]
	if !keyMatches(leaf, key) {
		return &Problem{Host: host, Path: keyPath, Reason: ReasonKeyMismatch,
			Detail: fmt.Sprintf("certificate %s has a %s public key", certPath, leaf.PublicKeyAlgorithm),
			Fix:    "use the private key issued with this certificate (Let's Encrypt: privkey.pem next to fullchain.pem)"}
	}
	if ok, _ := covers(leaf, host); !ok {
		return &Problem{Host: host, Path: certPath, Reason: ReasonNameMismatch,
			Detail: fmt.Sprintf("names %v", certNames(leaf)),
			Fix:    fmt.Sprintf("use a certificate with %s (or a *. wildcard of its parent) in its subject alternative names", host)}
	}
	if now.After(leaf.NotAfter) {
		return &Problem{Host: host, Path: certPath, Reason: ReasonExpired,
			Detail: "on " + leaf.NotAfter.UTC().Format(timeLayout),
			Fix:    "renew the certificate (certbot renew, or your ACME client)"}
	}
	if now.Before(leaf.NotBefore) {
		return &Problem{Host: host, Path: certPath, Reason: ReasonNotYetValid,
			Detail: "valid from " + leaf.NotBefore.UTC().Format(timeLayout),
			Fix:    "check the system clock, or use a certificate that is valid now"}
	}
	return nil
}

// warnings are the non-fatal findings on a usable certificate.
func warnings(certPath string, chain []*x509.Certificate, now time.Time, within time.Duration) []string {
	leaf := chain[0]
	var w []string
	if len(chain) == 1 && !isSelfSigned(leaf) {
		w = append(w, fmt.Sprintf("chain missing: %s holds only the leaf issued by %q; clients may fail to verify it (use fullchain.pem)",
			certPath, leaf.Issuer.String()))
	}
	if left := leaf.NotAfter.Sub(now); left < within {
		w = append(w, fmt.Sprintf("expires soon: %s expires in %d days (%s)",
			certPath, int(left.Hours()/24), leaf.NotAfter.UTC().Format(timeLayout)))
	}
	return w
}

// Validate checks a certificate and key pair for host at time now: both
// parse, the key matches, the names cover host, and now is inside the
// validity period. It is for the renewal watcher: an error means the new
// files must be refused and the old ones kept. The error is an *Error with
// one Problem. Self-signed certificates are not refused here (policy is
// Prepare's job).
func Validate(certFile, keyFile string, host string, now time.Time) error {
	chain, p := loadChain(certFile)
	if p == nil {
		var key crypto.Signer
		key, p = loadKey(keyFile)
		if p == nil {
			p = checkPair(certFile, keyFile, chain, key, host, now)
		}
	}
	if p != nil {
		p.Host = host
		return &Error{Problems: []Problem{*p}}
	}
	return nil
}

// Fingerprint returns the lowercase hex SHA-256 of the DER of the first
// certificate in a PEM file (what clients pin, and what tells whether a
// renewed file holds a different certificate).
func Fingerprint(path string) (string, error) {
	chain, p := loadChain(path)
	if p != nil {
		return "", fmt.Errorf("fingerprint of %s: %w", path, &Error{Problems: []Problem{*p}})
	}
	return fingerprintOf(chain[0]), nil
}

func fingerprintOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
