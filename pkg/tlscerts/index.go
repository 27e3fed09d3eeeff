package tlscerts

import (
	"bufio"
	"cmp"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// indexDepth is how deep Prosody's certmanager indexes the certificate
// directory (index_certs with depth_limit 3: <dir>/a/b/file).
const indexDepth = 3

// candidate is one certificate file found in the directory and the key file
// that goes with it (Prosody's rule: .crt -> .key, fullchain -> privkey; a
// <host>.pem holds both).
type candidate struct {
	certPath string
	keyPath  string
	chain    []*x509.Certificate // nil when problem is set
	problem  *Problem            // why the certificate itself could not be loaded
	symlink  bool                // certPath is a symlink (certbot's live/ entries are)
}

// matchingKey is Prosody's find_matching_key, applied to the file name.
func matchingKey(certPath string) string {
	dir, name := filepath.Split(certPath)
	if n, ok := strings.CutSuffix(name, ".crt"); ok {
		name = n + ".key"
	}
	return dir + strings.ReplaceAll(name, "fullchain", "privkey")
}

// index finds every certificate file under dir the way Prosody does: up to
// indexDepth levels, following symlinks, skipping dot-directories, taking
// files named *.crt or *fullchain* whose first line starts a PEM certificate.
// Unlike Prosody it keeps expired certificates and ones without a key, so
// that their problem can be reported. A dir that cannot be listed is an error.
func index(dir string, log *zap.Logger) ([]*candidate, error) {
	var out []*candidate
	if err := indexInto(dir, indexDepth, &out, log); err != nil {
		return nil, err
	}
	return out, nil
}

func indexInto(dir string, depth int, out *[]*candidate, log *zap.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list certificate directory %s: %w", dir, err)
	}
	for _, e := range entries {
		full := filepath.Join(dir, e.Name())
		fi, err := os.Stat(full) // follows symlinks, like lfs.attributes
		if err != nil {
			log.Debug("skipping unreadable entry", zap.String("path", full), zap.Error(err))
			continue
		}
		if fi.IsDir() {
			if strings.HasPrefix(e.Name(), ".") || depth <= 1 {
				continue
			}
			if err := indexInto(full, depth-1, out, log); err != nil {
				log.Debug("skipping certificate subdirectory", zap.String("path", full), zap.Error(err))
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), ".crt") && !strings.Contains(e.Name(), "fullchain") {
			continue
		}
		if !startsWithCertificate(full) {
			log.Debug("skipping non-certificate", zap.String("path", full))
			continue
		}
		*out = append(*out, loadCandidate(full, matchingKey(full), e.Type()&os.ModeSymlink != 0))
	}
	return nil
}

// startsWithCertificate is Prosody's content test: the first line is the
// PEM certificate header.
func startsWithCertificate(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.TrimRight(line, "\r\n") == "-----BEGIN CERTIFICATE-----"
}

func loadCandidate(certPath, keyPath string, symlink bool) *candidate {
	c := &candidate{certPath: certPath, keyPath: keyPath, symlink: symlink}
	c.chain, c.problem = loadChain(certPath)
	return c
}

// conventionalPaths are the places Prosody's find_cert looks for host, plus
// certbot's layout: a certificate found there but not covering the host is
// reported as a name mismatch rather than as "no certificate".
func conventionalPaths(dir, host string) []string {
	return []string{
		filepath.Join(dir, host+".crt"),
		filepath.Join(dir, host, "fullchain.pem"),
		filepath.Join(dir, host+".pem"),
		filepath.Join(dir, "live", host, "fullchain.pem"),
	}
}

// evaluated is a candidate checked for one host.
type evaluated struct {
	cand         *candidate
	key          crypto.Signer
	problem      *Problem
	exact        bool
	conventional bool
	managed      bool // Options.Managed, not a file of the directory
}

// keyCache loads each key file once per Prepare.
type keyCache map[string]struct {
	key     crypto.Signer
	problem *Problem
}

func (kc keyCache) load(path string) (crypto.Signer, *Problem) {
	if v, ok := kc[path]; ok {
		return v.key, v.problem
	}
	k, p := loadKey(path)
	kc[path] = struct {
		key     crypto.Signer
		problem *Problem
	}{k, p}
	return k, p
}

// choose picks the certificate for host among the indexed candidates: a
// usable one whose names cover the host exactly, else by wildcard; among
// equals the one valid longest, then the conventional path, then a symlink
// (the pointer an ACME client updates), then by path. When none is usable it
// returns the most relevant problem.
func choose(dir, host string, cands []*candidate, keys keyCache, opts *Options) (*evaluated, *Problem) {
	now := opts.Now()
	conv := conventionalPaths(dir, host)
	var covering []*evaluated
	for _, c := range cands {
		if c.problem != nil {
			continue
		}
		ok, exact := covers(c.chain[0], host)
		if !ok {
			continue
		}
		ev := &evaluated{cand: c, exact: exact, conventional: slices.Contains(conv, c.certPath)}
		var p *Problem
		ev.key, p = keys.load(c.keyPath)
		if p == nil {
			p = checkPair(c.certPath, c.keyPath, c.chain, ev.key, host, now)
		}
		if p != nil {
			cp := *p
			cp.Host = host
			ev.problem = &cp
		}
		covering = append(covering, ev)
	}
	slices.SortStableFunc(covering, func(a, b *evaluated) int {
		return cmp.Or(
			boolFirst(a.problem == nil, b.problem == nil),
			boolFirst(a.exact, b.exact),
			b.cand.chain[0].NotAfter.Compare(a.cand.chain[0].NotAfter),
			boolFirst(a.conventional, b.conventional),
			boolFirst(a.cand.symlink, b.cand.symlink),
			strings.Compare(a.cand.certPath, b.cand.certPath),
		)
	})
	if len(covering) > 0 {
		if covering[0].problem != nil {
			return nil, covering[0].problem
		}
		return covering[0], nil
	}
	// Nothing covers the host: explain what sits where the operator
	// probably put it.
	for _, path := range conv {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		c := findCandidate(cands, path)
		if c == nil { // <host>.pem: certificate and key in one file
			c = loadCandidate(path, path, false)
		}
		if c.problem != nil {
			p := *c.problem
			p.Host = host
			return nil, &p
		}
		if ok, _ := covers(c.chain[0], host); ok {
			// Only a <host>.pem reaches this: usable unless its checks fail.
			ev := &evaluated{cand: c, exact: true, conventional: true}
			var p *Problem
			if ev.key, p = keys.load(c.keyPath); p == nil {
				p = checkPair(c.certPath, c.keyPath, c.chain, ev.key, host, now)
			}
			if p != nil {
				cp := *p
				cp.Host = host
				return nil, &cp
			}
			return ev, nil
		}
		return nil, &Problem{Host: host, Path: path, Reason: ReasonNameMismatch,
			Detail: fmt.Sprintf("names %v", certNames(c.chain[0])),
			Fix:    fmt.Sprintf("use a certificate with %s (or a *. wildcard of its parent) in its subject alternative names", host)}
	}
	return nil, nil
}

func findCandidate(cands []*candidate, path string) *candidate {
	for _, c := range cands {
		if c.certPath == path {
			return c
		}
	}
	return nil
}

// boolFirst orders true before false.
func boolFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	default:
		return 1
	}
}
