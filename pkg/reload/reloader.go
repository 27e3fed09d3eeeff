package reload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/listeners"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/tlscerts"
	"github.com/prosody-pfe/prosody-pfe/pkg/watch"
)

// Outcome is how one reload ended: the label of prosody_pfe_reloads_total.
type Outcome string

const (
	Applied        Outcome = "applied"         // Prosody took the change live
	Restarted      Outcome = "restarted"       // Prosody was restarted onto it
	PendingRestart Outcome = "pending-restart" // needs a restart PROSODY_RELOAD_RESTART=never forbids
	Unchanged      Outcome = "unchanged"       // nothing Prosody reads changed
	Refused        Outcome = "refused"         // the candidate failed a check; Prosody keeps its config
	Failed         Outcome = "failed"          // installing or applying it failed
	Skipped        Outcome = "skipped"         // stopped (or Prosody never got ready) before it was tried
)

// Monitor is what the reloader tells about readiness and outcomes
// (*health.Monitor).
type Monitor interface {
	WaitReady(ctx context.Context) error
	RenderDone(d time.Duration)
	ReloadStarted()
	ReloadDone(outcome string, d time.Duration, err error)
	SetInfo(info health.Info)
	CertExpiry(host string, notAfter time.Time)
	SetStatusToken(token string)
}

// Supervisor is how the reloader acts on Prosody (*supervise.Supervisor).
type Supervisor interface {
	Restart() error
	Signal(sig syscall.Signal) error
}

// Config configures New. Current, Monitor and Supervisor are required.
type Config struct {
	// Current is the state the server started with: the last good state,
	// which only the Reloader's goroutine touches from now on.
	Current    *initsteps.State
	Monitor    Monitor
	Supervisor Supervisor
	// Logger; nil means no logging.
	Logger *zap.Logger
	// Now is the clock for certificate checks; nil means time.Now.
	Now func() time.Time
}

// Reloader re-renders and applies the configuration when the tree, a
// certificate or a secret file changes, or when Trigger is called. It keeps
// the last good state: a candidate that fails any check is refused and
// Prosody keeps running what it runs.
type Reloader struct {
	cur  *initsteps.State
	mon  Monitor
	sup  Supervisor
	log  *zap.Logger
	now  func() time.Time
	kick chan string

	// liveMu guards live, the state whose rendered bytes are in the live
	// config file, and is held while a candidate is installed over it:
	// EnsureLive runs on the supervisor's goroutine.
	liveMu sync.Mutex
	live   *initsteps.State
}

// New returns a Reloader; it does nothing until Run.
func New(cfg Config) (*Reloader, error) {
	if cfg.Current == nil || cfg.Monitor == nil || cfg.Supervisor == nil {
		return nil, errors.New("reload: Current, Monitor and Supervisor are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reloader{cur: cfg.Current, mon: cfg.Monitor, sup: cfg.Supervisor, log: cfg.Logger,
		now: cfg.Now, kick: make(chan string, 1), live: cfg.Current}, nil
}

// EnsureLive checks that the config file Prosody reads (the live
// Paths.Config) holds the bytes last rendered and installed for it, and
// writes them back, with a warning, when it does not (changed, replaced or
// removed by someone else). restored says it had to. The supervisor calls it
// before every start of Prosody (supervise.Config.BeforeStart), so a crash or
// a kill never restarts Prosody on a file the entrypoint did not write; a
// reload calls it before deciding that nothing changed. Safe for concurrent
// use with Run.
func (r *Reloader) EnsureLive() (restored bool, err error) {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	s := r.live
	path := s.Paths.Config
	got, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{MaxBytes: int64(len(s.Rendered)) + 1})
	if err == nil && bytes.Equal(got, s.Rendered) {
		return false, nil
	}
	why := "its content differs"
	if err != nil && !errors.Is(err, atomicfile.ErrTooLarge) {
		why = err.Error()
	}
	if _, werr := s.WriteConfig(path, s.Rendered); werr != nil {
		return false, fmt.Errorf("restore the rendered config %s (%s): %w", path, why, werr)
	}
	r.log.Warn("rendered config was changed outside the entrypoint; wrote the rendered bytes back",
		zap.String("path", path), zap.String("why", why), zap.String("sha256", s.Hash))
	return true, nil
}

// Umask is the umask Prosody starts with: the `umask` option of the config
// in the live file (initsteps.ChildUmask), Prosody's default when it has
// none or (never after the check stage passed) an invalid one. The
// supervisor calls it before every start (supervise.Config.Umask), so a
// restart for a changed umask starts with the new one. Safe for concurrent
// use with Run.
func (r *Reloader) Umask() uint32 {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	m, _ := initsteps.ChildUmask(r.live.Plan) // DefaultUmask on error
	return m
}

// Trigger asks for a reload; it never blocks (requests coalesce).
func (r *Reloader) Trigger(reason string) {
	select {
	case r.kick <- reason:
	default:
	}
}

// Run reloads on each Trigger and, with PROSODY_WATCH, on each change the
// watcher it owns reports, until ctx ends. It returns once the watcher has
// stopped; its error is the watcher's failure (nil when ctx ended it).
func (r *Reloader) Run(ctx context.Context) error {
	var (
		changes  <-chan watch.Change
		watchErr chan error // nil (never ready) without a watcher
	)
	if st := r.cur.Settings; st.Watch {
		w, err := watch.New(watch.Config{
			// The certificates directory too: a certificate added for a host
			// that had none (or a generated one) is picked up without a restart.
			Dirs:     []string{st.ConfigDir, st.CustomDir, st.CertsDir},
			Files:    r.watchedFiles(),
			Debounce: st.WatchDebounce,
			Logger:   r.log,
		})
		if err != nil {
			return fmt.Errorf("start the config watcher: %w", err)
		}
		changes = w.Changes()
		watchErr = make(chan error, 1)
		wctx, stop := context.WithCancel(ctx)
		go func() { watchErr <- w.Run(wctx) }()
		defer func() {
			stop()
			if watchErr != nil {
				<-watchErr
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			watchErr = nil // it has ended: nothing left to wait for
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("config watcher stopped: %w", err)
		case reason := <-r.kick:
			r.Reload(ctx, reason)
		case c, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			r.Reload(ctx, "changed: "+strings.Join(c.Paths, ", "))
		}
	}
}

// watchedFiles are the single files outside the tree whose change matters: the
// certificates in use and the *_FILE secrets.
func (r *Reloader) watchedFiles() []string {
	var files []string
	if r.cur.Certs != nil {
		files = append(files, r.cur.Certs.Files()...)
	}
	for _, kv := range r.cur.Env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PROSODY_") && strings.HasSuffix(k, "_FILE") && v != "" {
			files = append(files, v)
		}
	}
	return files
}

// attempt is one reload as it goes through the steps.
type attempt struct {
	reason   string
	next     *initsteps.State
	side     string // the candidate's config file, until installed
	decision Decision
	outcome  Outcome
	err      error // what /status shows with the outcome
}

// errDone ends the steps early with the attempt's outcome already decided.
var errDone = errors.New("reload settled")

// Steps are a reload's named steps, in order. Each is timed and logged by the
// runner; a step that settles the outcome early ends the list.
func (r *Reloader) steps() []initsteps.Stage[*attempt] {
	return []initsteps.Stage[*attempt]{
		{Name: "candidate", Run: r.stepCandidate},
		{Name: "decide", Run: r.stepDecide},
		{Name: "install", Run: r.stepInstall},
		{Name: "apply", Run: r.stepApply},
	}
}

// Reload does one re-render and applies it by the least disruptive means,
// and returns its outcome (also recorded on the Monitor). The last good
// state moves to the candidate only once Prosody took it (or, under
// PROSODY_RELOAD_RESTART=never, once it is installed for the next start), so
// a failed apply is retried by the next change or Trigger.
func (r *Reloader) Reload(ctx context.Context, reason string) Outcome {
	start := time.Now()
	a := &attempt{reason: reason}
	log := r.log.With(zap.String("reason", reason))
	defer func() {
		if a.side != "" {
			_ = os.Remove(a.side) // gone by rename once installed
		}
		_ = os.RemoveAll(initsteps.CandidateDir(r.cur.Settings.RuntimeDir))
	}()
	// Never signal Prosody before it is ready: an early SIGHUP kills it.
	if err := r.mon.WaitReady(ctx); err != nil {
		a.outcome, a.err = Skipped, err
	} else {
		_, err := initsteps.Run(ctx, r.steps(), a, log, nil)
		if err != nil && !errors.Is(err, errDone) && a.outcome == "" {
			a.outcome, a.err = Failed, err
		}
	}
	d := time.Since(start)
	switch a.outcome {
	case Refused:
		log.Error("config change refused; prosody keeps its running config", zap.Error(a.err))
	case Failed:
		log.Error("reload failed; prosody keeps its previous config", zap.Error(a.err))
	case Skipped:
		log.Info("reload skipped", zap.Error(a.err))
	case Unchanged:
		log.Debug("rendered config unchanged")
	default:
		log.Info("reload done", zap.String("outcome", string(a.outcome)), zap.Duration("duration", d))
	}
	r.mon.ReloadDone(string(a.outcome), d, a.err)
	return a.outcome
}

// stepCandidate re-reads the environment (secret files may have changed) and
// runs the candidate stages into side files, then refuses abandoned
// certificates. Any error here refuses the change.
func (r *Reloader) stepCandidate(ctx context.Context, a *attempt) error {
	start := time.Now()
	defer func() { r.mon.RenderDone(time.Since(start)) }()
	st, _, err := settings.Load(r.cur.Env)
	if err != nil {
		return refused(a, err)
	}
	// The status token is the entrypoint's, not Prosody's: a rotated token
	// file takes effect now, whatever becomes of the rest of the candidate.
	r.mon.SetStatusToken(st.StatusToken.Reveal())
	next := r.cur.Candidate(st)
	a.next, a.side = next, next.Paths.Config
	// Where the candidate stages its keys and secrets: the prosody user must
	// enter it, as it enters the runtime directory. A link planted there is
	// removed (RemoveAll never follows one), never chowned through.
	side := initsteps.CandidateDir(st.RuntimeDir)
	_ = os.RemoveAll(side)
	if err := atomicfile.MkdirOwned(side, 0o755, next.UID, next.GID); err != nil {
		return err
	}
	if _, err := initsteps.Run(ctx, initsteps.Candidate(st), next, r.log, nil); err != nil {
		return refused(a, err)
	}
	if err := abandonedCerts(r.cur, next, r.now()); err != nil {
		return refused(a, err)
	}
	return nil
}

// refused settles a as refused: the candidate failed a check.
func refused(a *attempt, err error) error {
	a.outcome, a.err = Refused, err
	return errDone
}

func (r *Reloader) stepDecide(_ context.Context, a *attempt) error {
	restored, err := r.EnsureLive()
	if err != nil {
		return err
	}
	a.decision = Decide(r.cur, a.next)
	if restored && a.decision.Action == Nothing {
		// Prosody may have read the changed file (a config:reload() on its
		// admin socket): have it read the restored one, the same way as
		// any change it can apply live.
		a.decision = Decision{Action: Apply, Live: pfe.HasGlobalModule(r.cur.Plan, "admin_shell") &&
			pfe.HasGlobalModule(a.next.Plan, "admin_shell")}
	}
	switch a.decision.Action {
	case Nothing:
		a.outcome = Unchanged
		return errDone
	case Refuse:
		return refused(a, errors.New(a.decision.Reason))
	}
	return nil
}

// stepInstall puts an accepted candidate where Prosody reads it, all or
// nothing (see install). It first waits
// for readiness again: Prosody may have crashed and restarted while the
// candidate was checked, and no reload may reach a Prosody still starting.
func (r *Reloader) stepInstall(ctx context.Context, a *attempt) error {
	if err := r.mon.WaitReady(ctx); err != nil {
		a.outcome, a.err = Skipped, err
		return errDone
	}
	// The listening sockets the candidate needs are bound before anything
	// is installed: a port in use refuses the change, and Prosody keeps its
	// config and its sockets. The next start of Prosody gets the new set.
	set := a.next.Listeners
	if set != nil {
		skipped, err := set.Prepare(listeners.Plan(a.next.Plan))
		if err != nil {
			return refused(a, err)
		}
		for _, sk := range skipped {
			r.log.Warn("listener left to prosody: its address does not exist here",
				zap.String("listener", sk.Spec.String()), zap.Error(sk.Err))
		}
	}
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	if err := install(a.next, r.cur.Paths, a.side); err != nil {
		if set != nil {
			set.Discard()
		}
		return err
	}
	r.live = a.next
	return nil
}

// stepApply makes the running Prosody take the installed config.
func (r *Reloader) stepApply(ctx context.Context, a *attempt) error {
	d, next := a.decision, a.next
	if d.Action == Restart {
		if next.Settings.ReloadRestart == "never" {
			r.log.Warn("change needs a restart; PROSODY_RELOAD_RESTART=never, so prosody keeps running the old config until it restarts",
				zap.String("why", d.Reason))
			r.commit(next)
			a.outcome = PendingRestart
			return nil
		}
		r.log.Info("restarting prosody for a change reload cannot apply", zap.String("why", d.Reason))
		r.mon.ReloadStarted()
		if err := r.sup.Restart(); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		r.commit(next)
		a.outcome = Restarted
		return nil
	}
	r.mon.ReloadStarted()
	if err := r.apply(ctx, next, d); err != nil {
		return err
	}
	r.commit(next)
	a.outcome = Applied
	return nil
}

// apply makes the running Prosody take the new config: config:reload() over
// the admin socket (which returns the real result), else SIGHUP; then modules
// added or removed on each VirtualHost are loaded or unloaded live.
func (r *Reloader) apply(ctx context.Context, next *initsteps.State, d Decision) error {
	if !d.Live {
		// Prosody 13 answers a SIGHUP with RELOADING=1 and, once the reload
		// succeeded, READY=1 on NOTIFY_SOCKET; the monitor keeps readiness at
		// "reloading" until then, and the next reload waits for it.
		if err := r.sup.Signal(syscall.SIGHUP); err != nil {
			return fmt.Errorf("signal prosody to reload: %w", err)
		}
		return nil
	}
	sock := next.AdminSocket()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := adminsock.Dial(cctx, sock)
	if err != nil {
		return fmt.Errorf("connect to prosody's admin socket %s: %w", sock, err)
	}
	defer conn.Close()
	if err := result(conn.ConfigReload(cctx)); err != nil {
		return fmt.Errorf("prosody refused the config: %w", err)
	}
	for _, m := range d.Load {
		if err := result(conn.ModuleLoad(cctx, m.Module, m.Host)); err != nil {
			return fmt.Errorf("load module %s on %s: %w", m.Module, m.Host, err)
		}
		r.log.Info("module loaded", zap.String("module", m.Module), zap.String("host", m.Host))
	}
	for _, m := range d.Unload {
		if err := result(conn.ModuleUnload(cctx, m.Module, m.Host)); err != nil {
			return fmt.Errorf("unload module %s on %s: %w", m.Module, m.Host, err)
		}
		r.log.Info("module unloaded", zap.String("module", m.Module), zap.String("host", m.Host))
	}
	return nil
}

// commit makes next the state later reloads compare against.
func (r *Reloader) commit(next *initsteps.State) {
	r.cur = next
	r.mon.SetInfo(Info(next))
	for _, h := range next.Certs.Hosts {
		r.mon.CertExpiry(h.Host, h.NotAfter)
	}
}

// Info is what /status shows of a state.
func Info(s *initsteps.State) health.Info {
	info := health.Info{
		ConfigSource: initsteps.SourceFor(s.Settings).Name,
		Profile:      s.Plan.Profile,
		Environment:  s.Plan.Environment,
		Features:     s.Plan.FeatureNames(),
		ConfigHash:   s.Hash,
		ConfigCheck:  "checked",
		Hosts:        initsteps.Hosts(s.Plan),
		CertSources:  certSources(s),
		Modules:      ExpectedModules(s),
		AdminSocket:  adminSocketIfOn(s),
	}
	if info.ConfigSource == "file" {
		info.ConfigFile = s.Settings.ConfigFile
	}
	if s.CheckCached {
		info.ConfigCheck = "cached"
	}
	return info
}

// certSources maps each host to where its certificate came from.
func certSources(s *initsteps.State) map[string]string {
	out := map[string]string{}
	if s.Certs != nil {
		for _, h := range s.Certs.Hosts {
			out[h.Host] = string(h.Source)
		}
	}
	return out
}

// ExpectedModules is what each host of s's plan must have loaded, for the
// Monitor's module check.
func ExpectedModules(s *initsteps.State) []health.HostModules {
	var out []health.HostModules
	for _, hm := range s.Plan.ExpectedModules() {
		out = append(out, health.HostModules{Host: hm.Host, Modules: pfe.ModuleNames(hm.Modules)})
	}
	return out
}

// adminSocketIfOn is the admin socket's path, "" when the plan has no admin shell.
func adminSocketIfOn(s *initsteps.State) string {
	if !pfe.HasGlobalModule(s.Plan, "admin_shell") {
		return ""
	}
	return s.AdminSocket()
}

// result turns an admin shell answer into an error when it failed.
func result(res adminsock.Result, err error) error {
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("prosody says: %s", res.Message)
	}
	return nil
}

// abandonedCerts refuses a candidate that stopped using the certificate files
// a host was served from because those files now hold an invalid pair (a
// renewal for the wrong host, a key that does not match): discovery would
// otherwise quietly fall back to another file that covers the host, such as
// an older copy in Let's Encrypt's archive/, and the bad renewal would go
// unreported. Files that were removed are a deliberate move, not a refusal.
func abandonedCerts(prev, next *initsteps.State, now time.Time) error {
	if prev.Certs == nil || next.Certs == nil {
		return nil
	}
	for _, h := range next.Certs.Hosts {
		old, ok := prev.Certs.Host(h.Host)
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
