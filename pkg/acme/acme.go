// Package acme gets and renews the certificate of the hosts that no mounted
// certificate covers, from an ACME (RFC 8555) CA, with go-acme/lego as the
// protocol client. It is the only package that imports lego.
//
// One certificate covers every such host (one order, one key, one renewal);
// it, its key and the ACME account key live under <DataDir>/acme, written
// through atomicfile with private modes, so a restart reuses them instead of
// ordering again (CA rate limits). The TLS stage calls Ensure at start; the
// Prosody pipeline runs Run, which renews while Prosody serves and calls back
// once the new pair is on disk, so the reloader installs it like any renewed
// certificate.
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// Challenge types Config.Challenges accepts.
const (
	HTTP01    = "http-01"
	TLSALPN01 = "tls-alpn-01"
)

// Config configures New. Zero values are documented per field.
type Config struct {
	// Directory is the CA's ACME directory URL. Required.
	Directory string
	// CAFile is a PEM file of CAs to trust for the directory's HTTPS; "" =
	// the system roots.
	CAFile string
	// Email is the account's contact; "" registers without one.
	Email string
	// EABKid and EABHmacKey are the External Account Binding, both or neither.
	EABKid, EABHmacKey string
	// Challenges are HTTP01 and/or TLSALPN01; empty means HTTP01.
	Challenges []string
	// ListenHost is the address the challenge servers bind ("" = all).
	ListenHost string
	// HTTPPort and TLSPort are where HTTP-01 and TLS-ALPN-01 are answered.
	HTTPPort, TLSPort int
	// RenewBefore renews that long before expiry; 0 means when a third of
	// the lifetime is left (or earlier when the CA's renewal information
	// says so).
	RenewBefore time.Duration
	// RetryBackoff is the first delay before a failed renewal is retried
	// while running, doubled up to MaxRetryBackoff; 0 means a minute.
	RetryBackoff time.Duration
	// DataDir is the data volume: files go to <DataDir>/acme. Required.
	DataDir string
	// UID and GID own the certificate key, which Prosody reads (-1: keep the
	// process's). RootUID owns the account key, which only this process
	// reads (-1: keep).
	UID, GID, RootUID int
	// Logger; nil means no logging.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// MaxRetryBackoff caps the delay between renewal attempts while running.
const MaxRetryBackoff = 6 * time.Hour

// Observer is told about renewals (health.Monitor implements it).
type Observer interface {
	// ACMERenewal records one attempt to get a certificate: outcome is
	// "success" or "failure"; err (nil on success) is shown in /status and
	// holds no secret.
	ACMERenewal(outcome string, err error)
	// ACMENextRenewal records when the next attempt is due.
	ACMENextRenewal(at time.Time)
}

// Manager gets and renews one certificate. Its methods must not be called
// concurrently: Run starts after Ensure returned, and nothing else is called
// while it runs.
type Manager struct {
	cfg   Config
	dir   string
	log   *zap.Logger
	hosts []string // the last Ensure's, which Run keeps covered
	last  error    // the start's Ensure error, reported by Run
}

// New checks cfg and returns a Manager; it makes no network request.
func New(cfg Config) (*Manager, error) {
	if cfg.Directory == "" || cfg.DataDir == "" {
		return nil, errors.New("acme: Directory and DataDir are required")
	}
	if len(cfg.Challenges) == 0 {
		cfg.Challenges = []string{HTTP01}
	}
	for _, c := range cfg.Challenges {
		if c != HTTP01 && c != TLSALPN01 {
			return nil, fmt.Errorf("acme: challenge %q not supported (PROSODY_ACME_CHALLENGES accepts http-01, tls-alpn-01)", c)
		}
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// lego logs through a process-wide slog logger (stdout by default):
	// route it into ours, at debug level, so the JSON log stays one stream.
	legolog.SetDefault(slog.New(zapHandler{log: cfg.Logger.Named("lego")}))
	return &Manager{cfg: cfg, dir: Dir(cfg.DataDir), log: cfg.Logger}, nil
}

// Dir is where the ACME files of a data directory live.
func Dir(dataDir string) string { return filepath.Join(dataDir, "acme") }

// Ensure makes sure the stored certificate covers hosts, is valid, and is not
// due for renewal; otherwise it orders a new one (answering the challenges
// itself) and stores it. The error says why the CA gave no certificate and
// what to do (see Explain). issued says whether a new one was ordered.
func (m *Manager) Ensure(ctx context.Context, hosts []string) (issued bool, err error) {
	hosts = sortedHosts(hosts)
	m.hosts = hosts
	if p, err := Stored(m.cfg.DataDir); err == nil {
		why := m.renewReason(p, hosts, nil)
		if why == "" {
			m.log.Info("acme certificate reused", zap.Strings("hosts", hosts), zap.Time("not_after", p.NotAfter),
				zap.Time("renew_at", m.renewAt(p, nil)))
			return false, nil
		}
		m.log.Info("acme certificate needed", zap.String("why", why), zap.Strings("hosts", hosts))
	}
	err = m.obtain(ctx, hosts)
	m.last = err
	if err != nil && ctx.Err() == nil {
		// A renewal that fails while the stored certificate still serves
		// every host is not a reason to refuse to start: Run retries it.
		if p, serr := Stored(m.cfg.DataDir); serr == nil && m.cfg.Now().Before(p.NotAfter) && p.Directory == m.cfg.Directory && coversAll(p, hosts) {
			m.log.Warn("acme renewal failed at start; the stored certificate is still valid and stays in use", zap.Error(err),
				zap.Time("not_after", p.NotAfter))
			return false, nil
		}
	}
	return err == nil, err
}

func coversAll(p *Pair, hosts []string) bool {
	for _, h := range hosts {
		if !slices.Contains(p.Hosts, h) {
			return false
		}
	}
	return true
}

// renewReason says why the stored pair p cannot serve hosts now, or "".
func (m *Manager) renewReason(p *Pair, hosts []string, ari *certificate.RenewalInfo) string {
	now := m.cfg.Now()
	for _, h := range hosts {
		if !slices.Contains(p.Hosts, h) {
			return fmt.Sprintf("the stored certificate does not cover %s", h)
		}
	}
	if p.Directory != m.cfg.Directory {
		return "the stored certificate is from another ACME directory"
	}
	if !now.Before(m.renewAt(p, ari)) {
		return "the stored certificate is due for renewal"
	}
	return ""
}

// renewAt is when p is due: RenewAt, then the CA's renewal window if it
// asks for earlier.
func (m *Manager) renewAt(p *Pair, ari *certificate.RenewalInfo) time.Time {
	at := RenewAt(p.NotBefore, p.NotAfter, m.cfg.RenewBefore, p.Jitter)
	if ari != nil && !ari.SuggestedWindow.Start.IsZero() && ari.SuggestedWindow.Start.Before(at) {
		if t := ari.ShouldRenewAt(m.cfg.Now(), at.Sub(m.cfg.Now())); t != nil && t.Before(at) {
			at = *t
		}
	}
	return at
}

// RenewAt is when a certificate valid from notBefore to notAfter is renewed:
// exactly renewBefore ahead of its end when set (the operator's choice),
// else when a third of its lifetime is left, moved earlier by jitter in
// [0,1) times a twentieth of the lifetime (at most 12h), so servers started
// together do not renew together.
func RenewAt(notBefore, notAfter time.Time, renewBefore time.Duration, jitter float64) time.Time {
	if renewBefore > 0 {
		return notAfter.Add(-renewBefore)
	}
	life := notAfter.Sub(notBefore)
	at := notAfter.Add(-life / 3)
	spread := min(life/20, 12*time.Hour)
	return at.Add(-time.Duration(jitter * float64(spread)))
}

// obtain registers (or finds) the account and orders a certificate for hosts.
func (m *Manager) obtain(ctx context.Context, hosts []string) error {
	start := time.Now()
	if err := atomicfile.MkdirOwned(m.dir, 0o700, m.cfg.UID, m.cfg.GID); err != nil {
		return fmt.Errorf("acme: keep the account and certificate in %s (PROSODY_DATA_DIR): %w", m.dir, err)
	}
	client, err := m.client(ctx)
	if err != nil {
		return err
	}
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: hosts, Bundle: true, KeyType: certcrypto.EC256})
	if err != nil {
		return Explain(m.cfg, hosts, err)
	}
	p, err := m.store(res, hosts)
	if err != nil {
		return err
	}
	m.log.Info("acme certificate issued", zap.Strings("hosts", hosts), zap.Time("not_after", p.NotAfter),
		zap.String("sha256", p.Fingerprint), zap.Duration("took", time.Since(start)))
	return nil
}

// client returns a lego client with the account registered and the
// challenge servers set up.
func (m *Manager) client(ctx context.Context) (*lego.Client, error) {
	acct, err := m.account()
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(m.cfg.CAFile)
	if err != nil {
		return nil, err
	}
	lc := lego.NewConfig(acct)
	lc.CADirURL = m.cfg.Directory
	lc.HTTPClient = hc
	lc.UserAgent = "prosody-pfe"
	client, err := lego.NewClient(lc)
	if err != nil {
		return nil, Explain(m.cfg, nil, fmt.Errorf("read the ACME directory: %w", err))
	}
	for _, c := range m.cfg.Challenges {
		switch c {
		case HTTP01:
			err = client.Challenge.SetHTTP01Provider(http01.NewProviderServer(m.cfg.ListenHost, strconv.Itoa(m.cfg.HTTPPort)))
		case TLSALPN01:
			err = client.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer(m.cfg.ListenHost, strconv.Itoa(m.cfg.TLSPort)))
		}
		if err != nil {
			return nil, fmt.Errorf("acme: set up %s: %w", c, err)
		}
	}
	if acct.reg == nil {
		var err error
		if m.cfg.EABKid != "" {
			acct.reg, err = client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
				TermsOfServiceAgreed: true, Kid: m.cfg.EABKid, HmacEncoded: m.cfg.EABHmacKey})
		} else {
			acct.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
		}
		if err != nil {
			acct.reg = nil
			return nil, Explain(m.cfg, nil, fmt.Errorf("register the ACME account: %w", err))
		}
		if err := m.saveAccount(acct); err != nil {
			return nil, err
		}
		m.log.Info("acme account registered", zap.String("directory", m.cfg.Directory), zap.String("account", acct.reg.Location))
	}
	return client, nil
}

// httpClient trusts caFile (PEM) for the CA's HTTPS, or the system roots.
func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSHandshakeTimeout = 30 * time.Second
	tr.ResponseHeaderTimeout = 30 * time.Second
	if caFile != "" {
		data, err := atomicfile.ReadFile(caFile, atomicfile.ReadOptions{MaxBytes: 1 << 20})
		if err != nil {
			return nil, fmt.Errorf("acme: read PROSODY_ACME_CA_FILE %q: %w", caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("acme: PROSODY_ACME_CA_FILE %q holds no PEM certificate; give the CA certificate that signed the ACME server's HTTPS certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Timeout: 2 * time.Minute, Transport: tr}, nil
}

// sortedHosts returns hosts sorted, without duplicates, as a new slice.
func sortedHosts(hosts []string) []string {
	out := slices.Clone(hosts)
	slices.Sort(out)
	return slices.Compact(out)
}

// jitter is a fresh random fraction for a new certificate's RenewAt.
func jitter() float64 { return rand.Float64() }
