package xmppcheck

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// Outcomes of one line of a Report.
const (
	Pass         = "PASS"
	Fail         = "FAIL"
	NotCheckable = "not checkable"
)

// Service-discovery namespaces (XEP-0030).
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
)

// Config is what Verify checks and how it reaches the server.
type Config struct {
	// AdminSocket is the path of Prosody's admin socket (admin_shell on).
	// Required: the throwaway account is made and deleted there, and the
	// loaded modules are read there.
	AdminSocket string
	// C2SAddr is the host:port of the c2s listener. Required.
	C2SAddr string
	// Plan is the plan the server runs. Required. Every domain of it is
	// checked, each with its own throwaway account and block of lines.
	Plan *pfe.Plan
	// OwnConfig says Plan was read from the operator's own config
	// (PROSODY_CONFIG_FILE), which plans no PFE feature: beside the login,
	// each domain's block has a "modules" line (every module the config
	// enables is loaded on each host under the domain) and a "features" line, not
	// checkable, saying that the per-feature checks do not apply.
	OwnConfig bool
	// Timeout bounds the whole run; 0 means 60s.
	Timeout time.Duration
	// RootCAs verifies the server's certificate; nil means the system roots.
	// A certificate that does not verify fails the login line only when the
	// plan's environment does not allow self-signed certificates.
	RootCAs *x509.CertPool
}

// Line is the outcome for one feature (or "login", the session itself) on one domain.
type Line struct {
	// Domain is the VirtualHost the line is about: its throwaway account
	// logged in there, and its components are the ones under it.
	Domain   string   `json:"domain"`
	Feature  string   `json:"feature"`
	Result   string   `json:"result"` // Pass, Fail or NotCheckable
	Evidence []string `json:"evidence"`
}

// Report is the result of one Verify run: one block of lines per domain of
// the plan. It holds no secret: the throwaway accounts' passwords are never
// kept.
type Report struct {
	// Domains are the domains checked, in the plan's order.
	Domains         []string  `json:"domains"`
	At              time.Time `json:"at"`
	DurationSeconds float64   `json:"duration_seconds"`
	// Lines are the lines of every domain, domain after domain.
	Lines []Line `json:"lines"`
	// Passed, Failed and NotCheckable count the lines of every domain.
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	NotCheckable int `json:"not_checkable"`
}

// OK reports whether no line failed, on any domain.
func (r *Report) OK() bool { return r.Failed == 0 }

// FailedFeatures lists the features (and "login", "cleanup") that failed: the
// names alone when one domain was checked, else each as "<feature> on <domain>".
func (r *Report) FailedFeatures() []string {
	var out []string
	for _, l := range r.Lines {
		if l.Result != Fail {
			continue
		}
		if len(r.Domains) > 1 {
			out = append(out, l.Feature+" on "+l.Domain)
		} else {
			out = append(out, l.Feature)
		}
	}
	return out
}

// Verify runs the self-test against the running server, on every domain of
// the plan, and returns its report. The error is non-nil only when the check
// itself cannot run (a missing setting, no admin socket, the loaded modules
// cannot be read); a server that lacks something gives FAIL lines and a nil
// error, and so does a domain where the throwaway account cannot be made
// (its "login" line fails). Whatever it made (the accounts, a room) is
// deleted before it returns, also on failure; what could not be deleted is a
// FAIL "cleanup" line of its domain.
func Verify(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.AdminSocket == "" || cfg.C2SAddr == "" || cfg.Plan == nil || len(cfg.Plan.Domains) == 0 {
		return nil, errors.New("verify: the admin socket, the c2s address and a plan with a domain are required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	rep := &Report{Domains: slices.Clone(cfg.Plan.Domains), At: start.UTC()}

	admin, err := adminsock.Dial(ctx, cfg.AdminSocket)
	if err != nil {
		return nil, fmt.Errorf("verify needs the admin shell (the admin/shell feature): %w", err)
	}
	defer admin.Close()
	// Every domain's modules are read before any account is made, so a
	// broken admin shell leaves nothing behind.
	loaded := map[string]map[string]map[string]bool{}
	for _, domain := range cfg.Plan.Domains {
		if loaded[domain], err = loadedModules(ctx, admin, cfg.Plan, domain); err != nil {
			return nil, fmt.Errorf("verify: read the loaded modules of %s: %w", domain, err)
		}
	}
	for _, domain := range cfg.Plan.Domains {
		lines := verifyDomain(ctx, cfg, admin, domain, loaded[domain])
		for i := range lines {
			lines[i].Domain = domain
		}
		rep.Lines = append(rep.Lines, lines...)
	}
	rep.finish(start)
	return rep, nil
}

// verifyDomain is the self-test of one domain: its own throwaway account,
// login, disco of the domain, the account and the domain's components, and
// every feature's checks. The account (and what the round trips made) is
// gone when it returns; a leftover it could not remove is a FAIL "cleanup"
// line.
func verifyDomain(ctx context.Context, cfg Config, admin *adminsock.Conn, domain string, loaded map[string]map[string]bool) (lines []Line) {
	user := "pfe-verify-" + randomHex(6)
	pass := randomHex(24)
	jid := user + "@" + domain
	res, err := admin.Exec(ctx, "user:create("+adminsock.LuaQuote(jid)+", "+adminsock.LuaQuote(pass)+")")
	if err != nil || !res.OK {
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = "prosody says: " + res.Message
		}
		return []Line{{Feature: "login", Result: Fail, Evidence: []string{"could not create the throwaway account " + jid + " over the admin socket: " + why}}}
	}
	cleanup := []string{}
	defer func() {
		// The account goes even when ctx ran out: a fresh, short deadline.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer dcancel()
		if r, err := admin.Exec(dctx, "user:delete("+adminsock.LuaQuote(jid)+")"); err != nil || !r.OK {
			cleanup = append(cleanup, "could not delete the throwaway account "+jid)
		}
		if len(cleanup) > 0 {
			lines = append(lines, Line{Feature: "cleanup", Result: Fail, Evidence: cleanup})
		}
	}()

	login := Line{Feature: "login", Result: Pass}
	var certNote string
	tc := &tls.Config{
		InsecureSkipVerify: true, // verified below, so a self-signed development certificate can be reported, not refused
		VerifyConnection: func(cs tls.ConnectionState) error {
			certNote = verifyCert(cs, domain, cfg.RootCAs)
			return nil
		},
	}
	c, err := Dial(ctx, DialConfig{Addr: cfg.C2SAddr, Domain: domain, Username: user, Password: pass, Resource: "verify", TLS: tc})
	if err != nil {
		login.Result, login.Evidence = Fail, []string{err.Error()}
		return []Line{login}
	}
	defer c.Close()
	tlsVer := tls.VersionName(c.TLS().Version)
	login.Evidence = append(login.Evidence, fmt.Sprintf("STARTTLS (%s), %s, bound %s", tlsVer, c.Mechanism(), c.JID()))
	if certNote != "" {
		login.Evidence = append(login.Evidence, certNote)
		if !cfg.Plan.TLS.AllowSelfSigned {
			login.Result = Fail
		}
	} else {
		login.Evidence = append(login.Evidence, "certificate verified for "+domain)
	}
	lines = append(lines, login)

	s := &session{c: c, plan: cfg.Plan, domain: domain, loaded: loaded, info: map[string]*discoResult{}}
	s.info[domain] = s.discoInfo(ctx, domain)
	s.info[c.Bare()] = s.discoInfo(ctx, c.Bare())
	s.items = s.discoItems(ctx, domain)
	for _, comp := range cfg.Plan.Components {
		if comp.Domain == domain {
			s.info[comp.Address] = s.discoInfo(ctx, comp.Address)
		}
	}
	if cfg.OwnConfig {
		lines = append(lines, s.ownModules(), Line{Feature: "features", Result: NotCheckable, Evidence: []string{
			"not applicable: the server runs its own config (PROSODY_CONFIG_FILE), which plans no PFE feature, so no feature's disco keys or round trips (archive, upload, MUC) are checked",
		}})
	}
	for _, f := range cfg.Plan.Features {
		lines = append(lines, s.feature(ctx, f, &cleanup))
	}
	return lines
}

func (r *Report) finish(start time.Time) {
	r.DurationSeconds = time.Since(start).Seconds()
	r.Passed, r.Failed, r.NotCheckable = 0, 0, 0
	for _, l := range r.Lines {
		switch l.Result {
		case Pass:
			r.Passed++
		case Fail:
			r.Failed++
		default:
			r.NotCheckable++
		}
	}
}

// verifyCert returns "" when the certificate chains to roots and names
// domain, else what is wrong with it.
func verifyCert(cs tls.ConnectionState, domain string, roots *x509.CertPool) string {
	if len(cs.PeerCertificates) == 0 {
		return "the server sent no certificate"
	}
	leaf := cs.PeerCertificates[0]
	if err := leaf.VerifyHostname(domain); err != nil {
		return "certificate does not name " + domain + ": " + err.Error()
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: domain, Roots: roots, Intermediates: inter}); err != nil {
		return "certificate not trusted (" + err.Error() + ")"
	}
	return ""
}

// loadedModules reads module:list for each host of the plan that belongs to
// domain (its VirtualHost and its components, see ownerDomain), as a set per
// host that includes the global modules.
func loadedModules(ctx context.Context, admin *adminsock.Conn, p *pfe.Plan, domain string) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	for _, hm := range p.ExpectedModules() {
		if ownerDomain(p, hm.Host) != domain {
			continue
		}
		set, err := admin.LoadedModules(ctx, hm.Host)
		if err != nil {
			return nil, err
		}
		out[hm.Host] = set
	}
	return out, nil
}

// ownerDomain is the domain of p whose block checks host: a domain itself;
// a component planned for a domain (pfe.ComponentPlan.Domain); else (an
// operator's own config, whose components name no domain) the longest domain
// host is a subdomain of; "" for none. So with the domains example.org and
// chat.example.org, conference.chat.example.org is checked with the second.
func ownerDomain(p *pfe.Plan, host string) string {
	if slices.Contains(p.Domains, host) {
		return host
	}
	for _, c := range p.Components {
		if c.Address == host && slices.Contains(p.Domains, c.Domain) {
			return c.Domain
		}
	}
	owner := ""
	for _, d := range p.Domains {
		if strings.HasSuffix(host, "."+d) && len(d) > len(owner) {
			owner = d
		}
	}
	return owner
}

type discoResult struct {
	features map[string]bool
	err      error
}

type session struct {
	c      *Client
	plan   *pfe.Plan
	domain string
	loaded map[string]map[string]bool
	info   map[string]*discoResult
	items  []string
}

func (s *session) discoInfo(ctx context.Context, to string) *discoResult {
	res, err := s.c.IQ(ctx, "get", to, "<query xmlns='"+nsDiscoInfo+"'/>")
	if err != nil {
		return &discoResult{err: err}
	}
	d := &discoResult{features: map[string]bool{}}
	if q := res.Child(nsDiscoInfo, "query"); q != nil {
		for _, f := range q.Children {
			if f.XMLName.Local == "feature" {
				d.features[f.Attr("var")] = true
			}
		}
	}
	return d
}

func (s *session) discoItems(ctx context.Context, to string) []string {
	res, err := s.c.IQ(ctx, "get", to, "<query xmlns='"+nsDiscoItems+"'/>")
	if err != nil {
		return nil
	}
	var out []string
	if q := res.Child(nsDiscoItems, "query"); q != nil {
		for _, it := range q.Children {
			out = append(out, it.Attr("jid"))
		}
	}
	return out
}

// lineBuilder collects one feature's evidence.
type lineBuilder struct {
	line   Line
	failed bool
	seen   bool // something a client can see proved part of the feature
}

func (b *lineBuilder) pass(format string, a ...any) {
	b.seen = true
	b.line.Evidence = append(b.line.Evidence, fmt.Sprintf(format, a...))
}

func (b *lineBuilder) fail(format string, a ...any) {
	b.failed = true
	b.line.Evidence = append(b.line.Evidence, fmt.Sprintf(format, a...))
}

// ownModules checks that every module the operator's own config enables is
// loaded (module:list) on each of its hosts under the domain.
func (s *session) ownModules() Line {
	b := &lineBuilder{line: Line{Feature: "modules"}}
	for _, hm := range s.plan.ExpectedModules() {
		set, ok := s.loaded[hm.Host]
		if !ok {
			continue
		}
		n := 0
		for _, m := range hm.Modules {
			if set[m.Name] {
				n++
			} else {
				b.fail("module %s is not loaded on %s", m.Name, hm.Host)
			}
		}
		b.pass("%d of %d modules the config enables are loaded on %s", n, len(hm.Modules), hm.Host)
	}
	l := b.line
	switch {
	case b.failed:
		l.Result = Fail
	case b.seen:
		l.Result = Pass
	default:
		l.Result, l.Evidence = NotCheckable, []string{"no host of the config under " + s.domain}
	}
	return l
}

// feature checks one planned feature: its modules, its namespaces, and its round trip.
func (s *session) feature(ctx context.Context, f pfe.PlannedFeature, cleanup *[]string) Line {
	b := &lineBuilder{line: Line{Feature: f.Name}}
	mods := 0
	for _, hm := range s.plan.ExpectedModules() {
		set, ok := s.loaded[hm.Host]
		if !ok {
			continue
		}
		comp := s.componentOf(hm.Host)
		for _, m := range hm.Modules {
			mine := m.Feature == f.Name || (m.Feature == "" && comp != nil && m.Name == comp.Type && whyNames(comp.Why, f.Name))
			if !mine {
				continue
			}
			mods++
			if !set[m.Name] {
				b.fail("module %s is not loaded on %s", m.Name, hm.Host)
			}
		}
	}
	d := f.Disco
	if d != nil {
		s.expect(b, s.domain, "server", d.Server)
		s.expect(b, s.c.Bare(), "account", d.Account)
		for _, name := range sortedKeys(d.Components) {
			addr := s.componentAddr(name)
			if addr == "" {
				b.fail("component %s is not in the plan for %s", name, s.domain)
				continue
			}
			if slices.Contains(s.items, addr) {
				b.pass("%s listed in the server's disco#items", addr)
			} else {
				b.fail("%s is not listed in the server's disco#items", addr)
			}
			s.expect(b, addr, addr, d.Components[name])
		}
		if len(d.Stream) > 0 {
			have := s.c.StreamFeatures()
			var found, missing []string
			for _, ns := range d.Stream {
				if slices.Contains(have, ns) {
					found = append(found, ns)
				} else {
					missing = append(missing, ns)
				}
			}
			if len(found) > 0 {
				b.pass("stream features offer %s", strings.Join(found, ", "))
			}
			if len(missing) > 0 {
				b.fail("stream features lack %s", strings.Join(missing, ", "))
			}
		}
	}
	if !b.failed {
		switch f.Name {
		case "messaging/archive":
			s.roundTripMAM(ctx, b)
		case "web/upload":
			s.roundTripUpload(ctx, b)
		case "collaboration/muc":
			s.roundTripMUC(ctx, b, cleanup)
		}
	}
	switch {
	case b.failed:
		b.line.Result = Fail
	case b.seen:
		b.line.Result = Pass
	default:
		b.line.Result = NotCheckable
		if mods > 0 {
			b.line.Evidence = append(b.line.Evidence, fmt.Sprintf("its %d module(s) are loaded, but nothing of it is visible to a client", mods))
		} else {
			b.line.Evidence = append(b.line.Evidence, "it loads no module and nothing of it is visible to a client")
		}
	}
	return b.line
}

// expect checks that the disco#info of jid (named where in the evidence) has every namespace of want.
func (s *session) expect(b *lineBuilder, jid, where string, want []string) {
	if len(want) == 0 {
		return
	}
	d := s.info[jid]
	if d == nil || d.err != nil {
		why := "not asked"
		if d != nil {
			why = d.err.Error()
		}
		b.fail("disco#info of %s failed: %s", where, why)
		return
	}
	var found, missing []string
	for _, ns := range want {
		if d.features[ns] {
			found = append(found, ns)
		} else {
			missing = append(missing, ns)
		}
	}
	if len(found) > 0 {
		b.pass("%s advertises %s", where, strings.Join(found, ", "))
	}
	if len(missing) > 0 {
		b.fail("%s does not advertise %s", where, strings.Join(missing, ", "))
	}
}

func (s *session) componentOf(addr string) *pfe.ComponentPlan {
	for i := range s.plan.Components {
		if s.plan.Components[i].Address == addr {
			return &s.plan.Components[i]
		}
	}
	return nil
}

func (s *session) componentAddr(name string) string {
	for _, c := range s.plan.Components {
		if c.Name == name && c.Domain == s.domain {
			return c.Address
		}
	}
	return ""
}

// whyNames reports whether a reason chain names the feature's layer.
func whyNames(why []string, feature string) bool {
	return slices.ContainsFunc(why, func(w string) bool { return strings.HasPrefix(w, "feature "+feature+" ") })
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Summary is what /status shows of the report.
func (r *Report) Summary() health.VerifySummary {
	return health.VerifySummary{
		At: r.At, DurationSeconds: r.DurationSeconds, OK: r.OK(), Domains: slices.Clone(r.Domains),
		Passed: r.Passed, Failed: r.Failed, NotCheckable: r.NotCheckable,
		FailedFeatures: r.FailedFeatures(),
	}
}

// Print writes the report as text: for each domain, one line per feature
// ("PASS  messaging/archive  account advertises urn:xmpp:mam:2; …") and the
// domain's counts; with more than one domain each block starts with the
// domain's name and a last line adds them up.
func (r *Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	multi := len(r.Domains) > 1
	for i, d := range r.Domains {
		if multi {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "== %s\n", d)
		}
		var pass, fail, nc int
		for _, l := range r.Lines {
			if l.Domain != d {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Result, l.Feature, strings.Join(l.Evidence, "; "))
			switch l.Result {
			case Pass:
				pass++
			case Fail:
				fail++
			default:
				nc++
			}
		}
		if multi {
			fmt.Fprintf(tw, "%s: %d passed, %d failed, %d not checkable\n", d, pass, fail, nc)
		}
	}
	name := strings.Join(r.Domains, ", ")
	if multi {
		name = fmt.Sprintf("all %d domains", len(r.Domains))
	}
	fmt.Fprintf(tw, "\n%s: %d passed, %d failed, %d not checkable (%.1fs)\n", name, r.Passed, r.Failed, r.NotCheckable, r.DurationSeconds)
	return tw.Flush()
}
