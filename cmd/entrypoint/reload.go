package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
	"github.com/prosody-pfe/prosody-pfe/pkg/tlscerts"
	"github.com/prosody-pfe/prosody-pfe/pkg/watch"
)

// reloader re-renders and applies the configuration when the tree, a
// certificate or a secret file changes, or on SIGHUP to the entrypoint. It keeps
// the last good state: a candidate that fails any check is refused and Prosody
// keeps running what it runs.
type reloader struct {
	cur  *state // the last good state; only run's goroutine touches it
	env  []string
	mon  *health.Monitor
	log  *zap.Logger
	sup  *supervise.Supervisor
	kick chan string
}

func newReloader(s *state, env []string, mon *health.Monitor, log *zap.Logger) *reloader {
	return &reloader{cur: s, env: env, mon: mon, log: log.Named("reload"), kick: make(chan string, 1)}
}

// trigger asks for a reload; it never blocks (requests coalesce).
func (r *reloader) trigger(reason string) {
	select {
	case r.kick <- reason:
	default:
	}
}

// run waits for changes until ctx ends, and owns the watcher it starts.
func (r *reloader) run(ctx context.Context) {
	var changes <-chan watch.Change
	done := make(chan struct{})
	if r.cur.st.Watch {
		w, err := watch.New(watch.Config{
			// The certificates directory too: a certificate added for a host
			// that had none (or a generated one) is picked up without a restart.
			Dirs:     []string{r.cur.st.ConfigDir, r.cur.st.CustomDir, r.cur.st.CertsDir},
			Files:    r.watchedFiles(),
			Debounce: r.cur.st.WatchDebounce,
			Logger:   r.log,
		})
		if err != nil {
			r.log.Error("config watcher not started: edits will apply only on SIGHUP", zap.Error(err))
			close(done)
		} else {
			changes = w.Changes()
			go func() {
				defer close(done)
				if err := w.Run(ctx); err != nil {
					r.log.Error("config watcher stopped", zap.Error(err))
				}
			}()
		}
	} else {
		close(done)
	}
	defer func() { <-done }()
	for {
		select {
		case <-ctx.Done():
			return
		case reason := <-r.kick:
			r.reload(ctx, reason)
		case c, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			r.reload(ctx, "changed: "+strings.Join(c.Paths, ", "))
		}
	}
}

// watchedFiles are the single files outside the tree whose change matters: the
// certificates in use and the *_FILE secrets.
func (r *reloader) watchedFiles() []string {
	var files []string
	if r.cur.certs != nil {
		files = append(files, r.cur.certs.Files()...)
	}
	for _, kv := range r.env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PROSODY_") && strings.HasSuffix(k, "_FILE") && v != "" {
			files = append(files, v)
		}
	}
	return files
}

// reload does one re-render and applies it by the least disruptive means.
// r.cur moves to the new state only once Prosody took it (or, under
// PROSODY_RELOAD_RESTART=never, once it is installed for the next start), so
// a failed apply is retried by the next change or SIGHUP.
func (r *reloader) reload(ctx context.Context, reason string) {
	start := time.Now()
	log := r.log.With(zap.String("reason", reason))
	defer os.RemoveAll(filepath.Join(r.cur.st.RuntimeDir, "next")) // staged copies of a candidate
	// Never signal Prosody before it is ready: an early SIGHUP kills it.
	if err := r.mon.WaitReady(ctx); err != nil {
		log.Info("reload skipped", zap.Error(err))
		return
	}
	next, err := r.candidate(ctx)
	r.mon.RenderDone(time.Since(start))
	if err != nil {
		log.Error("config change refused; prosody keeps its running config", zap.Error(err))
		r.mon.ReloadDone("refused", time.Since(start), err)
		return
	}
	if err := abandonedCerts(r.cur, next, time.Now()); err != nil {
		_ = os.Remove(next.configPath)
		log.Error("certificate change refused; prosody keeps the certificate it has", zap.Error(err))
		r.mon.ReloadDone("refused", time.Since(start), err)
		return
	}
	if err := storageChange(r.cur.plan, next.plan); err != nil {
		_ = os.Remove(next.configPath)
		log.Error("config change refused; prosody keeps its running config", zap.Error(err))
		r.mon.ReloadDone("refused", time.Since(start), err)
		return
	}
	certsChanged := fingerprints(r.cur) != fingerprints(next)
	secretsChanged := next.secretsHash != r.cur.secretsHash
	if string(next.rendered) == string(r.cur.rendered) && !certsChanged && !secretsChanged {
		_ = os.Remove(next.configPath)
		log.Debug("rendered config unchanged")
		r.mon.ReloadDone("unchanged", time.Since(start), nil)
		return
	}
	// Prosody may have crashed and restarted while the candidate was checked:
	// wait again, so no reload reaches a Prosody that is still starting.
	if err := r.mon.WaitReady(ctx); err != nil {
		_ = os.Remove(next.configPath)
		log.Info("reload skipped", zap.Error(err))
		return
	}
	prev := r.cur
	if err := r.install(next); err != nil {
		log.Error("install the new config", zap.Error(err))
		r.mon.ReloadDone("failed", time.Since(start), err)
		return
	}
	live := hasAdminShell(prev.plan) && hasAdminShell(next.plan)
	why := restartReason(prev.plan, next.plan, live)
	if secretsChanged && why == "" {
		why = "a secret changed (Prosody reads secrets when a module or the storage starts)"
	}
	if why != "" {
		if next.st.ReloadRestart == "never" {
			log.Warn("change needs a restart; PROSODY_RELOAD_RESTART=never, so prosody keeps running the old config until it restarts",
				zap.String("why", why))
			r.commit(next)
			r.mon.ReloadDone("pending-restart", time.Since(start), nil)
			return
		}
		log.Info("restarting prosody for a change reload cannot apply", zap.String("why", why))
		r.mon.ReloadStarted()
		if err := r.sup.Restart(); err != nil {
			r.mon.ReloadDone("failed", time.Since(start), err)
			log.Error("restart", zap.Error(err))
			return
		}
		r.commit(next)
		r.mon.ReloadDone("restarted", time.Since(start), nil)
		return
	}
	r.mon.ReloadStarted()
	if err := r.apply(ctx, prev, next, live); err != nil {
		log.Error("reload failed; prosody keeps its previous in-memory config", zap.Error(err))
		r.mon.ReloadDone("failed", time.Since(start), err)
		return
	}
	r.commit(next)
	log.Info("config reloaded", zap.Duration("duration", time.Since(start)), zap.String("sha256", next.hash[:16]))
	r.mon.ReloadDone("applied", time.Since(start), nil)
}

// install puts an accepted candidate where Prosody reads it: certificates and
// secrets first, then the config file by an atomic rename.
func (r *reloader) install(next *state) error {
	next.candidate = false
	if err := installCerts(next); err != nil {
		return err
	}
	if err := writeCredentials(next, r.cur.credDir); err != nil {
		return err
	}
	if err := os.Rename(next.configPath, r.cur.configPath); err != nil {
		return err
	}
	next.configPath, next.credDir = r.cur.configPath, r.cur.credDir
	return nil
}

// commit makes next the state later reloads compare against.
func (r *reloader) commit(next *state) {
	r.cur = next
	r.mon.SetInfo(infoFor(next))
	for _, h := range next.certs.Hosts {
		r.mon.CertExpiry(h.Host, h.NotAfter)
	}
}

// candidate re-reads the environment (secret files may have changed) and runs
// the config stages into a side file that is checked before it replaces the
// running one.
func (r *reloader) candidate(ctx context.Context) (*state, error) {
	st, _, err := settings.Load(r.env)
	if err != nil {
		return nil, err
	}
	next := *r.cur
	next.st = st
	next.candidate = true
	// Where the candidate stages its keys and secrets: the prosody user must be
	// able to enter it, as it enters the runtime directory.
	side := filepath.Join(st.RuntimeDir, "next")
	if err := os.MkdirAll(side, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", side, err)
	}
	if next.uid >= 0 {
		if err := os.Chown(side, next.uid, next.gid); err != nil {
			return nil, fmt.Errorf("give %s to uid %d: %w", side, next.uid, err)
		}
	}
	next.configPath = filepath.Join(st.RuntimeDir, "prosody.next.cfg.lua")
	_, err = initsteps.Run(ctx, configStages(), &next, r.log, nil)
	if err != nil {
		_ = os.Remove(next.configPath)
		return nil, err
	}
	return &next, nil
}

// apply makes the running Prosody take the new config: config:reload() over
// the admin socket (which returns the real result), else SIGHUP; then modules
// added or removed on each VirtualHost are loaded or unloaded live.
func (r *reloader) apply(ctx context.Context, prev, next *state, live bool) error {
	sock := adminSocket(next)
	if sock == "" || !live {
		// Prosody 13 answers a SIGHUP with RELOADING=1 and, once the reload
		// succeeded, READY=1 on NOTIFY_SOCKET; the monitor keeps readiness at
		// "reloading" until then, and the next reload waits for it. Waiting for
		// readiness here would wait for this reload's own ReloadDone.
		if err := r.sup.Signal(syscall.SIGHUP); err != nil {
			return fmt.Errorf("signal prosody to reload: %w", err)
		}
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := adminsock.Dial(cctx, sock)
	if err != nil {
		return fmt.Errorf("connect to prosody's admin socket %s: %w", sock, err)
	}
	defer conn.Close()
	res, err := conn.ConfigReload(cctx)
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("prosody refused the config: %s", res.Message)
	}
	for _, h := range next.plan.Hosts {
		before, after := hostModules(prev.plan, h.Domain), hostModules(next.plan, h.Domain)
		for _, m := range sortedDiff(after, before) {
			if err := moduleResult(conn.ModuleLoad(cctx, m, h.Domain)); err != nil {
				return fmt.Errorf("load module %s on %s: %w", m, h.Domain, err)
			}
			r.log.Info("module loaded", zap.String("module", m), zap.String("host", h.Domain))
		}
		for _, m := range sortedDiff(before, after) {
			if err := moduleResult(conn.ModuleUnload(cctx, m, h.Domain)); err != nil {
				return fmt.Errorf("unload module %s on %s: %w", m, h.Domain, err)
			}
			r.log.Info("module unloaded", zap.String("module", m), zap.String("host", h.Domain))
		}
	}
	return nil
}

// storageOptions select where the data lives.
var storageOptions = []string{"storage", "default_storage", "sql", "data_path"}

// storageChange refuses to move storage by a reload: the data would stay in
// the old backend. Changing PROSODY_STORAGE and restarting the container runs
// the migrate stage, which moves it.
func storageChange(prev, next *pfe.Plan) error {
	po, no := options(prev.Global), options(next.Global)
	for _, name := range storageOptions {
		if fmt.Sprint(po[name]) != fmt.Sprint(no[name]) {
			return fmt.Errorf("option %s changed: storage is not switched by a reload, the data would stay behind; set PROSODY_STORAGE and restart the container, which migrates the data before Prosody starts", name)
		}
	}
	return nil
}

// moduleResult turns an admin shell answer into an error when it failed.
func moduleResult(res adminsock.Result, err error) error {
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("prosody says: %s", res.Message)
	}
	return nil
}

// restartClass are global options Prosody reads once: a change needs a restart.
var restartClass = map[string]bool{
	"c2s_ports": true, "s2s_ports": true, "http_ports": true, "https_ports": true,
	"c2s_direct_tls_ports": true, "s2s_direct_tls_ports": true, "interfaces": true,
	"local_interfaces": true, "http_interfaces": true, "https_interfaces": true,
	"data_path": true, "storage": true, "default_storage": true, "sql": true,
	"statistics": true, "statistics_interval": true, "authentication": true,
	"plugin_paths": true, "pidfile": true, "umask": true, "run_as_root": true,
	"network_backend": true, "admin_socket": true, "gc": true,
}

// restartReason says why prev → next cannot be applied by a reload, or "".
func restartReason(prev, next *pfe.Plan, liveModules bool) string {
	po, no := options(prev.Global), options(next.Global)
	for name := range restartClass {
		if fmt.Sprint(po[name]) != fmt.Sprint(no[name]) {
			return "option " + name + " changed"
		}
	}
	if !slices.Equal(prev.Domains, next.Domains) {
		return "virtual hosts changed"
	}
	if componentsKey(prev) != componentsKey(next) {
		return "components changed"
	}
	hostsChanged := false
	for _, h := range next.Hosts {
		if !maps.Equal(hostModules(prev, h.Domain), hostModules(next, h.Domain)) {
			hostsChanged = true
		}
	}
	if hostsChanged || !slices.Equal(moduleNames(prev.Global.Modules), moduleNames(next.Global.Modules)) ||
		!slices.Equal(moduleNames(prev.Global.Disabled), moduleNames(next.Global.Disabled)) {
		if !liveModules {
			return "modules changed and the admin shell (feature admin/shell) is not on in both the old and new config to load them live"
		}
		for _, h := range next.Hosts {
			if !slices.Equal(moduleNames(h.Disabled), moduleNames(hostPlan(prev, h.Domain).Disabled)) {
				return "disabled modules changed"
			}
		}
	}
	return ""
}

func options(sec pfe.SectionPlan) map[string]any {
	m := map[string]any{}
	for _, o := range sec.Options {
		m[o.Name] = o.Value
	}
	return m
}

func moduleNames(ms []pfe.Module) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	slices.Sort(out)
	return out
}

// componentsKey is the identity and content of every Component: changing one
// needs a restart (host:activate cannot give a component new options).
func componentsKey(p *pfe.Plan) string {
	var b strings.Builder
	for _, c := range p.Components {
		fmt.Fprintf(&b, "%s %s %v %v;", c.Address, c.Type, moduleNames(c.Modules), options(c.SectionPlan))
	}
	return b.String()
}

func hostPlan(p *pfe.Plan, domain string) pfe.HostPlan {
	for _, h := range p.Hosts {
		if h.Domain == domain {
			return h
		}
	}
	return pfe.HostPlan{}
}

// hostModules is the set of modules a VirtualHost loads: global plus its own.
func hostModules(p *pfe.Plan, domain string) map[string]bool {
	set := map[string]bool{}
	for _, m := range p.Global.Modules {
		set[m.Name] = true
	}
	h := hostPlan(p, domain)
	for _, m := range h.Modules {
		set[m.Name] = true
	}
	for _, m := range append(slices.Clone(p.Global.Disabled), h.Disabled...) {
		delete(set, m.Name)
	}
	return set
}

func sortedDiff(a, b map[string]bool) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if !b[k] {
			out = append(out, k)
		}
	}
	return out
}

func hasAdminShell(p *pfe.Plan) bool {
	for _, m := range p.Global.Modules {
		if m.Name == "admin_shell" {
			return true
		}
	}
	return false
}

// adminSocket is the admin socket's path: `admin_socket` is relative to data_path.
func adminSocket(s *state) string {
	path := "prosody.sock"
	if v, ok := options(s.plan.Global)["admin_socket"].(string); ok {
		path = v
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(s.st.DataDir, path)
	}
	return path
}

// abandonedCerts refuses a candidate that stopped using the certificate files
// a host was served from because those files now hold an invalid pair (a
// renewal for the wrong host, a key that does not match): discovery would
// otherwise quietly fall back to another file that covers the host, such as
// an older copy in Let's Encrypt's archive/, and the bad renewal would go
// unreported. Files that were removed are a deliberate move, not a refusal.
func abandonedCerts(prev, next *state, now time.Time) error {
	if prev.certs == nil || next.certs == nil {
		return nil
	}
	for _, h := range next.certs.Hosts {
		old, ok := prev.certs.Host(h.Host)
		if !ok || old.SourceCert == h.SourceCert {
			continue
		}
		if _, err := os.Stat(old.SourceCert); err != nil {
			continue
		}
		if err := tlscerts.Validate(old.SourceCert, old.SourceKey, h.Host, now); err != nil {
			return fmt.Errorf("new certificate files for %s refused: %w", h.Host, err)
		}
	}
	return nil
}

func fingerprints(s *state) string {
	if s.certs == nil {
		return ""
	}
	var b strings.Builder
	for _, h := range s.certs.Hosts {
		b.WriteString(h.Host + "=" + h.Fingerprint + ";")
	}
	return b.String()
}
