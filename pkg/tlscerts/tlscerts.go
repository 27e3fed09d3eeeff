// Package tlscerts is the TLS init stage's engine: for every host Prosody
// serves it finds a certificate and key (Prosody's and Let's Encrypt's
// layouts, wildcard and multi-SAN certificates), checks them (key match,
// names, validity, chain, expiry), makes the key readable by the prosody user
// without making it world-readable (a private copy in the runtime directory),
// and in development generates one self-signed certificate for all hosts.
// The Result tells the renderer which certificate and key each host's
// `ssl = { certificate =, key = }` names, and the watcher which files to
// watch for renewal.
package tlscerts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// DefaultWarnWithin is the expiry warning threshold when Options.WarnWithin is 0.
const DefaultWarnWithin = 30 * 24 * time.Hour

// Source says where the files a host uses come from.
type Source string

// The sources of a host's certificate.
const (
	// SourceDiscovered: found in Options.Dir and readable by Prosody's user as is.
	SourceDiscovered Source = "discovered"
	// SourceGenerated: the self-signed development certificate in <DataDir>/certs.
	SourceGenerated Source = "generated"
	// SourceStaged: found in Options.Dir, copied to <RuntimeDir>/certs because
	// Prosody's user could not read it.
	SourceStaged Source = "staged"
	// SourceACME: the certificate this process got from an ACME CA
	// (Options.Managed), for a host no valid certificate in Options.Dir covers.
	SourceACME Source = "acme"
)

// Managed is a certificate this process obtained and keeps (ACME), used for
// the hosts that no valid certificate in Options.Dir covers: mounted
// certificates win where they exist and are valid.
type Managed struct {
	CertFile, KeyFile string
	Source            Source
}

// Options configures Prepare. Zero values are documented per field.
type Options struct {
	// Dir is the certificate directory (PROSODY_CERTS_DIR), indexed like
	// Prosody does. Empty: nothing is discovered.
	Dir string
	// Hosts are the VirtualHosts and Components to serve. Required.
	Hosts []string
	// RuntimeDir receives staged copies in <RuntimeDir>/certs. Needed only
	// when a key must be staged.
	RuntimeDir string
	// DataDir keeps the generated certificate in <DataDir>/certs. Needed only
	// when one is generated.
	DataDir string
	// UID and GID are Prosody's user and group: files must be readable by
	// them, and staged or generated files are owned by them. UID -1 means
	// "don't chown, Prosody runs as this process's user".
	UID, GID int
	// Generate allows generating a self-signed certificate for hosts that no
	// certificate covers (development, testing), and accepts self-signed ones.
	Generate bool
	// AllowSelfSigned accepts self-signed certificates, discovered or
	// generated, outside development (PROSODY_TLS_ALLOW_SELF_SIGNED). It
	// implies Generate for hosts no certificate covers.
	AllowSelfSigned bool
	// WarnWithin is the expiry warning threshold; 0 means DefaultWarnWithin.
	// A generated certificate is also renewed within it.
	WarnWithin time.Duration
	// Managed, when set, serves the hosts no valid certificate in Dir
	// covers, if its names cover them and it passes the same checks.
	Managed *Managed
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per host; nil means no logging.
	Logger *zap.Logger
}

// HostCert is what Prosody should use for one host.
type HostCert struct {
	Host string
	// CertFile and KeyFile are the paths for Prosody's ssl option.
	CertFile, KeyFile string
	// SourceCert and SourceKey are where the pair was found (equal to
	// CertFile/KeyFile unless staged); symlinks are kept as found.
	SourceCert, SourceKey string
	Source                Source
	NotAfter              time.Time
	SelfSigned            bool
	// Fingerprint is the lowercase hex SHA-256 of the leaf certificate.
	Fingerprint string
	// Warnings are non-fatal findings ("chain missing: …", "expires soon: …").
	Warnings []string
}

// Result is the outcome of Prepare, one entry per host in Options.Hosts order.
type Result struct {
	Hosts []HostCert
}

// Host returns the entry of one host.
func (r *Result) Host(name string) (HostCert, bool) {
	for _, h := range r.Hosts {
		if h.Host == name {
			return h, true
		}
	}
	return HostCert{}, false
}

// Files returns the source files to watch for renewal (certificates and
// keys as found, not staged copies; generated files are not included),
// sorted and without duplicates; ACME ones are not either. Watch their directories: ACME clients and
// Kubernetes replace files by rename or symlink swap.
func (r *Result) Files() []string {
	var files []string
	for _, h := range r.Hosts {
		if h.Source == SourceGenerated || h.Source == SourceACME {
			continue // this process wrote them, and reloads for them itself
		}
		files = append(files, h.SourceCert, h.SourceKey)
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// ValidProfile reports whether s is a tls_profile value this product
// offers: "modern", "intermediate" (Prosody's default) or "old".
func ValidProfile(s string) bool {
	switch s {
	case "modern", "intermediate", "old":
		return true
	}
	return false
}

// hostPattern is a DNS name as Prosody hosts are written: it also becomes a
// file name, so no slashes or leading dots.
var hostPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*$`)
})

// Prepare finds, checks and, if needed, stages or generates a certificate for
// every host in opts.Hosts. It returns a *Error listing every host's problem
// at once (each with the file, the reason and the fix) when any host has no
// usable certificate; other errors (an unlistable directory) are wrapped.
// Prepare is idempotent: call it again after a renewal to refresh staged
// copies. It never logs key material.
func Prepare(opts Options) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WarnWithin == 0 {
		opts.WarnWithin = DefaultWarnWithin
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if len(opts.Hosts) == 0 {
		return nil, fmt.Errorf("tls: no hosts to prepare certificates for")
	}
	var problems []Problem
	for _, h := range opts.Hosts {
		if !hostPattern().MatchString(h) {
			problems = append(problems, Problem{Host: h, Reason: ReasonBadHost,
				Fix: "use a lowercase DNS name such as example.com or conference.example.com"})
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}

	var cands []*candidate
	if opts.Dir != "" {
		var err error
		// A missing directory is only "no certificate": development may
		// generate one; elsewhere each host reports it with the fix.
		if cands, err = index(opts.Dir, log); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	now := opts.Now()
	selfOK := opts.Generate || opts.AllowSelfSigned
	who := targetIdentity(opts.UID, opts.GID)
	keys := keyCache{}
	res := &Result{Hosts: make([]HostCert, len(opts.Hosts))}
	var needGen []int
	for i, host := range opts.Hosts {
		hc := &res.Hosts[i]
		hc.Host = host
		ev, p := choose(opts.Dir, host, cands, keys, &opts)
		if (ev == nil || p != nil) && opts.Managed != nil {
			if m, mp := chooseManaged(host, keys, &opts); m != nil {
				ev, p = m, nil
			} else if p == nil && !selfOK {
				p = mp
			}
		}
		if p != nil {
			problems = append(problems, *p)
			continue
		}
		if ev == nil {
			if selfOK {
				needGen = append(needGen, i)
				continue
			}
			problems = append(problems, noCertificate(opts.Dir, host))
			continue
		}
		leaf := ev.cand.chain[0]
		hc.SourceCert, hc.SourceKey = ev.cand.certPath, ev.cand.keyPath
		hc.CertFile, hc.KeyFile = hc.SourceCert, hc.SourceKey
		hc.Source = SourceDiscovered
		if ev.managed {
			hc.Source = opts.Managed.Source
		}
		hc.NotAfter = leaf.NotAfter
		hc.SelfSigned = isSelfSigned(leaf)
		hc.Fingerprint = fingerprintOf(leaf)
		hc.Warnings = warnings(hc.SourceCert, ev.cand.chain, now, opts.WarnWithin)
		if hc.SelfSigned && !selfOK {
			problems = append(problems, Problem{Host: host, Path: hc.SourceCert, Reason: ReasonSelfSigned,
				Fix: "install a CA-issued certificate (e.g. Let's Encrypt), or set PROSODY_TLS_ALLOW_SELF_SIGNED=true"})
			continue
		}
		if p := makeReadable(hc, who, &opts); p != nil {
			problems = append(problems, *p)
		}
	}
	if len(needGen) > 0 && len(problems) == 0 {
		if p := generateFor(res, needGen, now, &opts, log); p != nil {
			problems = append(problems, *p)
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	for _, hc := range res.Hosts {
		log.Info("certificate ready", zap.String("host", hc.Host), zap.String("source", string(hc.Source)),
			zap.String("certificate", hc.CertFile), zap.String("key", hc.KeyFile),
			zap.Time("not_after", hc.NotAfter), zap.Bool("self_signed", hc.SelfSigned),
			zap.String("sha256", hc.Fingerprint))
		for _, w := range hc.Warnings {
			log.Warn("certificate warning", zap.String("host", hc.Host), zap.String("warning", w))
		}
	}
	return res, nil
}

// Uncovered returns the hosts of opts.Hosts that no usable certificate in
// opts.Dir covers (none, or only an invalid one): the hosts an ACME
// certificate must cover. opts.Managed is not consulted. It writes nothing.
func Uncovered(opts Options) ([]string, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	var cands []*candidate
	if opts.Dir != "" {
		var err error
		if cands, err = index(opts.Dir, log); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	keys := keyCache{}
	var out []string
	for _, host := range opts.Hosts {
		if ev, p := choose(opts.Dir, host, cands, keys, &opts); ev == nil || p != nil {
			out = append(out, host)
		}
	}
	return out, nil
}

// chooseManaged checks opts.Managed for host: the evaluated pair when it
// covers the host and passes checkPair, else the problem (nil when it does
// not cover the host at all).
func chooseManaged(host string, keys keyCache, opts *Options) (*evaluated, *Problem) {
	m := opts.Managed
	chain, p := loadChain(m.CertFile)
	if p != nil {
		p.Host = host
		return nil, p
	}
	if ok, _ := covers(chain[0], host); !ok {
		return nil, nil
	}
	key, p := keys.load(m.KeyFile)
	if p == nil {
		p = checkPair(m.CertFile, m.KeyFile, chain, key, host, opts.Now())
	}
	if p != nil {
		cp := *p
		cp.Host = host
		return nil, &cp
	}
	return &evaluated{cand: &candidate{certPath: m.CertFile, keyPath: m.KeyFile, chain: chain}, key: key, managed: true}, nil
}

// noCertificate explains where a certificate for host was looked for.
func noCertificate(dir, host string) Problem {
	if dir == "" {
		return Problem{Host: host, Reason: ReasonNoCertificate, Detail: "no certificate directory set",
			Fix: "set PROSODY_CERTS_DIR to a directory holding the certificates, or allow a self-signed one in development"}
	}
	detail := "no certificate whose names cover the host, looked 3 levels deep"
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		detail = "the certificate directory does not exist"
	}
	return Problem{Host: host, Path: dir, Reason: ReasonNoCertificate, Detail: detail,
		Fix: fmt.Sprintf("put %s.crt and %s.key (or %s/fullchain.pem and privkey.pem, or Let's Encrypt's live/%s/) in %s, "+
			"or set PROSODY_TLS_ALLOW_SELF_SIGNED=true", host, host, host, host, dir)}
}

// makeReadable stages hc's pair when Prosody's user cannot read it and this
// process can give it a private copy (it runs as root); otherwise an
// unreadable pair is a problem.
func makeReadable(hc *HostCert, who identity, opts *Options) *Problem {
	for _, path := range []string{hc.SourceKey, hc.SourceCert} {
		ok, why, err := readableBy(path, who)
		if err != nil {
			return &Problem{Host: hc.Host, Path: path, Reason: ReasonUnreadable, Detail: err.Error(),
				Fix: "make the file a readable regular file"}
		}
		if ok {
			continue
		}
		if !canStage(opts.UID) {
			return &Problem{Host: hc.Host, Path: path, Reason: ReasonKeyNotReadable, Detail: why,
				Fix: "make it readable by the prosody user's group without opening it to everyone " +
					"(chgrp GROUP FILE; chmod 0640 FILE), or start the entrypoint as root so it stages a private copy"}
		}
		crt, key, err := stage(opts.RuntimeDir, hc.Host, hc.SourceCert, hc.SourceKey, opts.UID, opts.GID)
		if err != nil {
			return &Problem{Host: hc.Host, Path: path, Reason: ReasonStaging, Detail: err.Error(),
				Fix: "set a writable runtime directory (PROSODY_RUNTIME_DIR)", Err: err}
		}
		// The copy is only useful if Prosody's user can reach it.
		if ok, why, err := readableBy(key, who); err != nil || !ok {
			if err != nil {
				why = err.Error()
			}
			return &Problem{Host: hc.Host, Path: key, Reason: ReasonStaging, Detail: why,
				Fix: "make the runtime directory (PROSODY_RUNTIME_DIR) searchable by the prosody user"}
		}
		hc.CertFile, hc.KeyFile, hc.Source = crt, key, SourceStaged
		return nil
	}
	if worldReadable(hc.SourceKey) && hc.SourceKey != hc.SourceCert {
		hc.Warnings = append(hc.Warnings, fmt.Sprintf("key world-readable: %s can be read by every user; chmod 0640 it", hc.SourceKey))
	}
	return nil
}

// generateFor gives the hosts at idx the generated certificate, which covers
// every host so one pinned certificate serves them all.
func generateFor(res *Result, idx []int, now time.Time, opts *Options, log *zap.Logger) *Problem {
	hosts := slices.Clone(opts.Hosts)
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	crt, key, leaf, _, err := selfSigned(opts.DataDir, hosts, opts.UID, opts.GID, now, opts.WarnWithin, log)
	if err != nil {
		fix := "set a writable data directory (PROSODY_DATA_DIR)"
		if atomicfile.IsNoSpace(err) {
			fix = "free space on the data volume (PROSODY_DATA_DIR) or give it a larger one"
		}
		return &Problem{Host: strings.Join(hosts, ","), Path: opts.DataDir, Reason: ReasonGeneration, Detail: err.Error(),
			Fix: fix, Err: err}
	}
	if leaf == nil { // new: read back what Prosody will read
		chain, p := loadChain(crt)
		if p != nil {
			return p
		}
		leaf = chain[0]
	}
	fingerprint := fingerprintOf(leaf)
	for _, i := range idx {
		hc := &res.Hosts[i]
		hc.CertFile, hc.KeyFile = crt, key
		hc.SourceCert, hc.SourceKey = crt, key
		hc.Source = SourceGenerated
		hc.NotAfter = leaf.NotAfter
		hc.SelfSigned = true
		hc.Fingerprint = fingerprint
	}
	return nil
}
