// Package health owns the entrypoint's view of the server's health: the readiness
// state, the one background XMPP probe loop, the HTTP endpoints (/livez, /readyz,
// /status, /metrics), the private Prometheus registry and the healthcheck client.
//
// The supervisor and the init-stage runner report to a Monitor through plain method
// calls (it implements supervise.Observer and initsteps.Observer without importing
// them). Endpoints answer from cached values only: any number of requests costs
// Prosody nothing, and a stopped or hung Prosody cannot block them.
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/sdnotify"
)

// Modes of Config.Mode.
const (
	// ModeProsody: ready means Prosody answers c2s (and said READY=1 with UseNotify).
	ModeProsody = "prosody"
	// ModePlain: plain-init mode; ready means init stages done and the child
	// runs (and said READY=1 with UseNotify).
	ModePlain = "plain"
)

// Values of Config.NotifyAccess.
const (
	NotifyMain = "main"
	NotifyAll  = "all"
)

// Config configures a Monitor. Zero values get the defaults documented per field.
type Config struct {
	// Listen is the HTTP address, e.g. ":5282" or "127.0.0.1:0". Empty means no
	// HTTP server (PROSODY_HEALTH_LISTEN=off): the probe loop and the notify
	// listener still run, so WaitReady keeps telling the truth; the
	// caller handles PROSODY_HEALTH_LISTEN=off by not creating a Monitor.
	Listen string
	// Interval between probes once ready. Default 10s (each probe is a c2s
	// connection Prosody logs at info level, so keep it at seconds).
	Interval time.Duration
	// StartupInterval is the first probe interval while not ready: after each child
	// start, reload or failed probe the loop probes after StartupInterval, doubling
	// up to Interval, so readiness is seen within ~StartupInterval of Prosody
	// answering but a server stuck not ready is not hammered. Default 200ms.
	StartupInterval time.Duration
	// ProbeTimeout bounds one probe, connect included. Default 2s. It is not tied
	// to Interval: a short interval must not make a loaded server look dead.
	ProbeTimeout time.Duration
	// FailureThreshold is how many probes in a row must fail before a ready
	// server is reported not ready (as Kubernetes' failureThreshold): one slow
	// answer on a busy machine is not an outage. After a failed probe the next
	// comes after StartupInterval, so a real outage shows within about
	// FailureThreshold × StartupInterval. Default 3. A child exit or restart
	// drops readiness at once, whatever the probes say.
	FailureThreshold int
	// Mode is ModeProsody (default when empty) or ModePlain.
	Mode string
	// C2SAddr is the host:port of Prosody's c2s listener. Required in ModeProsody.
	C2SAddr string
	// Domain is the VirtualHost the probe opens a stream to. Required in ModeProsody.
	Domain string
	// UseNotify makes readiness also wait for READY=1 on NOTIFY_SOCKET (Prosody 13).
	UseNotify bool
	// NotifyPath is where the NOTIFY_SOCKET listener binds; required with UseNotify.
	// Use a socket file in a directory the prosody user can search (Prosody 13.0.1
	// cannot connect to abstract "@" names); see sdnotify.Listen.
	NotifyPath string
	// DBNetwork and DBAddr name the database Prosody stores accounts in, as
	// net.Dial takes them ("tcp" and "host:port", or "unix" and a socket path);
	// "" means no database check. When set (ModeProsody), each probe also
	// connects there, and FailureThreshold failed connects in a row make the
	// state degraded: /readyz 503 "degraded: database unreachable since …",
	// /status "database". See settings.Settings.DatabaseAddr.
	DBNetwork, DBAddr string
	// WatchdogTimeout is how long the readiness probe may fail while Prosody
	// should be serving before RunWatchdog restarts it; 0 disables the
	// watchdog. It must not be negative.
	WatchdogTimeout time.Duration
	// StatusToken, when not empty, lets a client that is not on loopback read
	// /status with "Authorization: Bearer <StatusToken>"; empty means /status
	// answers loopback clients only (others get 403). It never appears in
	// logs, metrics or /status. SetStatusToken replaces it.
	StatusToken string
	// MaxConns bounds the open connections of the HTTP server; 0 means
	// DefaultMaxConns. Connections over it are closed at once.
	MaxConns int
	// NotifyUID and NotifyGID own the notify socket (mode 0600): the user the
	// child runs as, the only one besides root that may send to it. -1 keeps
	// the entrypoint's own id; the zero value is root's (no child could send).
	// Whatever the socket's owner, only datagrams from the current child's pid
	// (ChildStarted) are acted on; the rest are counted and dropped, unless
	// NotifyAccess is NotifyAll.
	NotifyUID, NotifyGID int
	// NotifyAccess says which senders are trusted, as systemd's NotifyAccess=:
	// NotifyMain (the default when empty) only the current child's pid;
	// NotifyAll every sender that can open the socket (its owner and root),
	// its messages taken as the current child's. Plain init uses NotifyAll,
	// since a shell's `systemd-notify --ready` sends from its own pid.
	NotifyAccess string
	// VerifyFile is where the last verify summary is read from for /status
	// (runtime dir + VerifyFile); "" means /status shows none.
	VerifyFile string
	// ProsodyLog, when not nil, is the writer Prosody's stdout goes through:
	// a module check that finds a module missing names Prosody's own error
	// lines about it. Nil: the reason is only "not loaded".
	ProsodyLog *ProsodyLog
	// Registry receives every metric. Nil means a new private registry. It must not
	// be prometheus.DefaultRegisterer, and must not be shared with another Monitor.
	Registry *prometheus.Registry
	// Logger is the parent logger; the Monitor logs as its "health" child. Nil: no logs.
	Logger *zap.Logger
}

// Monitor tracks readiness and serves the health endpoints. Create it with New and
// run it with Run. Its observer methods are safe to call from any goroutine, before
// and during Run.
type Monitor struct {
	cfg      Config
	log      *zap.Logger
	reg      *prometheus.Registry
	met      *metrics
	ln       net.Listener
	notify   *sdnotify.Listener
	handler  http.Handler
	started  time.Time
	kick     chan struct{} // wakes the probe loop early; capacity 1
	modKick  chan struct{} // wakes the module check loop; capacity 1
	scraped  chan struct{} // a /metrics scrape ended (releaseLoop); capacity 1
	releases atomic.Int64  // releases releaseLoop ran (its tests read it)
	snapshot atomic.Pointer[snapshot]
	token    atomic.Pointer[string] // the /status bearer token; see SetStatusToken

	mu      sync.Mutex
	in      inputs
	changed chan struct{} // closed and replaced on every readiness change
	status  statusRecord
	dropped dropLog
	// listeners are the sockets held for Prosody (SetListeners); nil when
	// Prosody binds its own. Guarded by mu.
	listeners ListenerSet

	vmu    sync.Mutex // guards verify; never held with mu
	verify verifyCache
}

// New validates cfg, creates the metrics on the registry, and binds the HTTP
// listener (and the notify socket with UseNotify) at once, so Addr and
// NotifySocket are valid as soon as New returns. Run must be called to serve and
// to release both; if it never runs, the sockets stay open until exit.
func New(cfg Config) (*Monitor, error) {
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.StartupInterval == 0 {
		cfg.StartupInterval = 200 * time.Millisecond
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = 2 * time.Second
	}
	if cfg.FailureThreshold == 0 {
		cfg.FailureThreshold = 3
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeProsody
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	var errs []error
	if cfg.Interval < 0 || cfg.StartupInterval < 0 || cfg.ProbeTimeout < 0 || cfg.FailureThreshold < 0 {
		errs = append(errs, fmt.Errorf("health probe intervals must be positive (interval %s, startup interval %s, timeout %s)", cfg.Interval, cfg.StartupInterval, cfg.ProbeTimeout))
	}
	switch cfg.Mode {
	case ModeProsody:
		if cfg.C2SAddr == "" || cfg.Domain == "" {
			errs = append(errs, fmt.Errorf("health mode %q needs the c2s address and the domain to probe (got %q, %q)", cfg.Mode, cfg.C2SAddr, cfg.Domain))
		}
	case ModePlain:
	default:
		errs = append(errs, fmt.Errorf("health mode %q is unknown (want %q or %q)", cfg.Mode, ModeProsody, ModePlain))
	}
	switch cfg.NotifyAccess {
	case "", NotifyMain, NotifyAll:
	default:
		errs = append(errs, fmt.Errorf("health notify access %q is unknown (want %q or %q)", cfg.NotifyAccess, NotifyMain, NotifyAll))
	}
	if cfg.WatchdogTimeout < 0 || cfg.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("health watchdog timeout %s and connection limit %d must not be negative", cfg.WatchdogTimeout, cfg.MaxConns))
	}
	if cfg.DBAddr != "" && cfg.DBNetwork != "tcp" && cfg.DBNetwork != "unix" {
		errs = append(errs, fmt.Errorf("health database network %q is unknown (want \"tcp\" or \"unix\")", cfg.DBNetwork))
	}
	if cfg.UseNotify && cfg.NotifyPath == "" {
		errs = append(errs, errors.New("health notify socket path is empty (want a socket file path when NOTIFY_SOCKET is used)"))
	}
	if cfg.Registry != nil && prometheus.Registerer(cfg.Registry) == prometheus.DefaultRegisterer {
		errs = append(errs, errors.New("health metrics registry is the global default registry (want a private prometheus.NewRegistry())"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	met, err := newMetrics(cfg.Registry, cfg.DBAddr != "" && cfg.Mode == ModeProsody)
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		cfg:     cfg,
		log:     cfg.Logger.Named("health"),
		reg:     cfg.Registry,
		met:     met,
		started: time.Now(),
		kick:    make(chan struct{}, 1),
		modKick: make(chan struct{}, 1),
		scraped: make(chan struct{}, 1),
		changed: make(chan struct{}),
	}
	met.startTime.Set(float64(m.started.UnixNano()) / 1e9)
	if err := cfg.Registry.Register(newQueueCollector(m)); err != nil {
		return nil, fmt.Errorf("register health metrics: %w", err)
	}
	m.token.Store(&cfg.StatusToken)
	first := derive(m.in, cfg.Mode == ModePlain, cfg.UseNotify)
	m.snapshot.Store(newSnapshot(first))
	met.setState(first.State)
	m.handler = m.newHandler()

	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen for health endpoints on %q: %w", cfg.Listen, err)
		}
		m.ln = ln
	}
	if cfg.UseNotify {
		n, err := sdnotify.Listen(cfg.NotifyPath, cfg.NotifyUID, cfg.NotifyGID)
		if err != nil {
			if m.ln != nil {
				_ = m.ln.Close()
			}
			return nil, err
		}
		m.notify = n
	}
	return m, nil
}

// Addr returns the address the HTTP server listens on (the resolved port when
// Config.Listen asked for port 0), or "" when there is no HTTP server.
func (m *Monitor) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// NotifySocket returns the value for the child's NOTIFY_SOCKET, or "" without UseNotify.
func (m *Monitor) NotifySocket() string {
	if m.notify == nil {
		return ""
	}
	return m.notify.Path()
}

// Handler returns the endpoint mux (/livez, /readyz, /status, /metrics). Run
// serves it; it is exported for callers that mount it elsewhere and for tests.
func (m *Monitor) Handler() http.Handler { return m.handler }

// Readiness returns the current state and reason without blocking.
func (m *Monitor) Readiness() Readiness { return m.snapshot.Load().r }

// Run serves HTTP, runs the probe loop, the module check loop and (with
// UseNotify) the notify listener until ctx is done or one of them fails, then
// shuts the server down (in-flight requests get up to 2s) and returns when all
// of them have ended. It returns nil after ctx ended, else the first failure.
// Call it once.
func (m *Monitor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Every request is a small GET answered from memory: the timeouts and the
	// header limit keep slow or oversized clients from holding memory, and the
	// listener bounds how many connections exist at all.
	srv := &http.Server{
		Handler:           m.handler,
		ReadHeaderTimeout: 3 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(m.log.Named("http")),
	}
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	if m.ln != nil {
		wg.Go(func() {
			ln := newLimitListener(m.ln, m.cfg.MaxConns, MaxConnsPerPeer, m.met.httpConns, m.met.httpRefused)
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve health endpoints on %s: %w", m.Addr(), err)
				cancel()
			}
		})
	}
	wg.Go(func() { m.probeLoop(ctx) })
	wg.Go(func() { m.modulesLoop(ctx) })
	wg.Go(func() { m.releaseLoop(ctx) })
	if m.notify != nil {
		wg.Go(func() {
			if err := m.notify.Run(ctx, m.onNotify); err != nil {
				errc <- err
				cancel()
			}
		})
	}
	m.log.Info("health endpoints listening", zap.String("addr", m.Addr()), zap.String("mode", m.cfg.Mode),
		zap.String("notify_socket", m.NotifySocket()))
	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WaitReady blocks until Prosody answers (nil): the state is ready, or degraded
// (it answers, but its database does not); until ctx ends (ctx.Err()); or until
// the server is on its way out: stopping, stopped or failed (an error naming
// the state). The watcher calls it before signalling Prosody, which dies on a
// SIGHUP that arrives before its handlers exist.
func (m *Monitor) WaitReady(ctx context.Context) error {
	for {
		m.mu.Lock()
		r := m.snapshot.Load().r
		changed := m.changed
		m.mu.Unlock()
		if r.Answers() {
			return nil
		}
		switch r.State {
		case StateStopping, StateStopped, StateFailed:
			return fmt.Errorf("wait for prosody to be ready: %s", r.Reason)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for prosody to be ready (last: %s): %w", r.Reason, ctx.Err())
		case <-changed:
		}
	}
}

// update applies fn to the inputs under the lock and publishes the derived state.
func (m *Monitor) update(fn func(in *inputs, st *statusRecord)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(&m.in, &m.status)
	next := derive(m.in, m.cfg.Mode == ModePlain, m.cfg.UseNotify)
	if next.Answers() {
		m.in.everReady = true
	}
	if sv := serving(m.in); sv != m.in.serving {
		m.in.serving = sv
		if sv {
			m.in.servingSince = time.Now()
		}
	}
	prev := &m.snapshot.Load().r
	if *prev == next {
		return
	}
	m.snapshot.Store(newSnapshot(next))
	if prev.State != next.State {
		m.met.setState(next.State)
		m.log.Info("readiness changed", zap.Stringer("from", prev.State), zap.Stringer("to", next.State),
			zap.String("reason", next.Reason))
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// wake makes the probe loop probe now (and restart its startup backoff), and
// the module check loop look whether a check is due.
func (m *Monitor) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
	m.wakeModules()
}

// wakeModules makes the module check loop look whether a check is due.
func (m *Monitor) wakeModules() {
	select {
	case m.modKick <- struct{}{}:
	default:
	}
}

// probing reports whether the loops may talk to Prosody: a child runs past
// the init stages and no shutdown began.
func (m *Monitor) probing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.in.probing()
}

// probing is Monitor.probing of in, read under m.mu.
func (in *inputs) probing() bool {
	return in.stagesDone && in.childRunning && !in.stopping && !in.gaveUp
}

// probeStart marks a c2s probe of the current child as begun and returns the
// child's generation, or 0 when no probe may run now (see probing).
func (m *Monitor) probeStart() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.in.probing() {
		return 0
	}
	m.in.probeGen = m.in.childGen
	return m.in.probeGen
}

// modulesLoop runs the check of the loaded modules whenever one is due
// (modulesDue), beside the probe loop rather than in it: after READY=1 the
// check (admin socket) and the c2s probe run at the same time, so /readyz
// turns 200 when the slower of the two is done, not after both in turn, and
// a probe that hangs does not hold the check back. Woken by wake (READY=1,
// a new child, new info, a reload's end) and by every probe, which retries a
// check whose wake-up found it not yet due.
func (m *Monitor) modulesLoop(ctx context.Context) {
	if m.cfg.Mode == ModePlain {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.modKick:
		}
		if m.probing() && m.modulesDue() {
			m.checkModules(ctx)
		}
	}
}

// probeLoop is the one background prober. It probes only while a child runs past
// the init stages and no shutdown began, so it never talks to a Prosody that is
// not supposed to be up.
func (m *Monitor) probeLoop(ctx context.Context) {
	if m.cfg.Mode == ModePlain {
		return
	}
	backoff := m.cfg.StartupInterval
	fails := 0   // failed probes in a row
	dbFails := 0 // failed database checks in a row
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
			backoff = m.cfg.StartupInterval
		case <-timer.C:
		}
		gen := m.probeStart()
		next := m.cfg.Interval
		if gen != 0 {
			// A wake-up that came before this probe began is answered by it
			// (the timer and a kick at once would otherwise probe twice).
			select {
			case <-m.kick:
				backoff = m.cfg.StartupInterval
			default:
			}
			m.wakeModules()
			start := time.Now()
			ok, detail, err := ProbeC2S(ctx, m.cfg.C2SAddr, m.cfg.Domain, m.cfg.ProbeTimeout)
			d := time.Since(start)
			if ctx.Err() != nil {
				return // shutting down: an interrupted probe says nothing about Prosody
			}
			if err != nil {
				detail = err.Error()
			}
			var again bool
			fails, again = m.probeDone(gen, ok, detail, start, d, fails)
			if !ok && fails < m.cfg.FailureThreshold {
				next = m.cfg.StartupInterval // confirm quickly
			}
			if again {
				backoff, next = m.cfg.StartupInterval, 0
			}
			if m.cfg.DBAddr != "" {
				dbFails = m.checkDatabase(ctx, dbFails)
				if dbFails > 0 && dbFails < m.cfg.FailureThreshold {
					next = m.cfg.StartupInterval
				}
			}
		}
		if m.Readiness().State != StateReady {
			next = min(next, backoff)
			backoff = min(backoff*2, m.cfg.Interval)
		} else {
			backoff = m.cfg.StartupInterval
		}
		timer.Reset(next)
	}
}

// modulesDue reports whether a module check is due now: one is pending and
// Prosody has said READY=1 (its modules are loaded by then), or does not
// speak NOTIFY_SOCKET.
func (m *Monitor) modulesDue() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.in.notify
	ready := !m.cfg.UseNotify || (n.ready && n.pid == m.in.childPID)
	return m.in.modulesPending && ready && !m.in.reloading
}

// probeDone records one c2s probe that began at start, in child generation
// gen (probeStart), and took d; fails is the count of failed probes in a row
// before it, and the count after it is returned. A ready server turns not
// ready at FailureThreshold failures in a row. A probe that began before the
// child last started or exited is counted in the metrics but says nothing
// about the current child: it changes no state. again reports that READY=1
// came during a probe that failed: the caller probes again at once.
func (m *Monitor) probeDone(gen int, ok bool, detail string, start time.Time, d time.Duration, fails int) (_ int, again bool) {
	m.met.probeSeconds.Observe(d.Seconds())
	if !ok {
		m.met.probeFailures.Inc()
	}
	m.mu.Lock()
	stale := gen != m.in.childGen
	again = !ok && !stale && m.in.probeAgain
	m.in.probeGen, m.in.probeAgain = 0, false
	m.mu.Unlock()
	if stale {
		m.log.Debug("probe of an earlier child dropped", zap.Bool("ok", ok), zap.String("detail", detail))
		return fails, false
	}
	fails++
	if ok {
		fails = 0
	} else {
		m.log.Debug("probe not ready", zap.String("detail", detail), zap.Duration("duration", d), zap.Int("in_a_row", fails))
	}
	m.update(func(in *inputs, st *statusRecord) {
		if gen != in.childGen {
			return // the child changed since the check above
		}
		st.probe = &probeJSON{OK: ok, Detail: detail, At: time.Now().UTC(), DurationSeconds: d.Seconds()}
		switch {
		case ok:
			in.probeFailSince, in.wedged = time.Time{}, ""
		case in.probeFailSince.IsZero():
			in.probeFailSince = start
		}
		if !ok && in.probeOK && fails < m.cfg.FailureThreshold {
			return // still ready: one failure is not an outage yet
		}
		in.probeOK, in.probeDetail = ok, detail
	})
	return fails, again
}

// checkDatabase runs one database check and records it; fails is the count of
// failed checks in a row before it, and the count after it is returned. The
// state turns degraded at FailureThreshold failures in a row, and back at the
// first success.
func (m *Monitor) checkDatabase(ctx context.Context, fails int) int {
	start := time.Now()
	ok, detail := probeDatabase(ctx, m.cfg.DBNetwork, m.cfg.DBAddr, m.cfg.ProbeTimeout)
	if ctx.Err() != nil {
		return fails
	}
	m.met.dbUp.Set(boolFloat(ok))
	if ok {
		fails = 0
	} else {
		fails++
		m.log.Debug("database check failed", zap.String("addr", m.cfg.DBAddr), zap.String("detail", detail), zap.Int("in_a_row", fails))
	}
	m.update(func(in *inputs, st *statusRecord) {
		switch {
		case ok:
			if in.dbDown {
				m.log.Info("database reachable again", zap.String("addr", m.cfg.DBAddr))
			}
			in.dbDown, in.dbDetail, in.dbDownSince = false, "", time.Time{}
		case fails == 1:
			in.dbDownSince = start
		}
		if !ok && fails >= m.cfg.FailureThreshold {
			if !in.dbDown {
				m.log.Warn("database unreachable: nobody can log in", zap.String("addr", m.cfg.DBAddr), zap.String("detail", detail),
					zap.Time("since", in.dbDownSince))
			}
			in.dbDown, in.dbDetail = true, detail
		}
		db := &databaseJSON{Addr: m.cfg.DBAddr, Reachable: ok, Detail: detail, At: time.Now().UTC()}
		if !ok {
			since := in.dbDownSince.UTC()
			db.Since = &since
		}
		st.database = db
	})
	return fails
}

// onNotify handles one NOTIFY_SOCKET datagram (from the notify listener goroutine).
// Only the supervised child may speak there: any other sender (another process
// of the prosody user, or a datagram without a pid) is dropped, so a local
// user cannot make a ready server look stopping or a stopping one ready.
// The supervisor reports ChildStarted as soon as the fork returns, long before
// Prosody has loaded enough to send READY=1.
//
// With NotifyAll, any sender that could open the socket speaks for the
// current child (none running: dropped).
func (m *Monitor) onNotify(msg sdnotify.Message) {
	m.mu.Lock()
	child := m.in.childPID
	m.mu.Unlock()
	if m.cfg.NotifyAccess == NotifyAll && child != 0 {
		msg.PID = child
	}
	if msg.PID == 0 || msg.PID != child {
		m.dropNotify(msg.PID)
		return
	}
	kind := "other"
	switch {
	case msg.Ready:
		kind = "ready"
	case msg.Reloading:
		kind = "reloading"
	case msg.Stopping:
		kind = "stopping"
	}
	m.met.notifyMsgs.WithLabelValues(kind).Inc()
	m.log.Debug("notify message", zap.String("type", kind), zap.Int("pid", msg.PID), zap.String("status", msg.Status))
	reprobe := false
	m.update(func(in *inputs, st *statusRecord) {
		if msg.PID != 0 && msg.PID != in.notify.pid {
			in.notify = notifyState{pid: msg.PID}
		}
		switch {
		case msg.Reloading:
			in.notify.reloading, in.notify.ready = true, false
		case msg.Ready:
			in.notify.reloading, in.notify.ready = false, true
		}
		if msg.Stopping {
			in.notify.stopping, in.notify.ready = true, false
		}
		if msg.Status != "" {
			st.notifyStatus = msg.Status
		}
		if msg.Ready {
			reprobe = readyReprobe(in)
		}
	})
	switch {
	case reprobe:
		m.wake()
	case msg.Ready:
		m.wakeModules()
	}
}

// readyReprobe decides, at READY=1, whether the c2s probe must run now. Not
// when it already answered for this child (probeOK counts only probes of the
// current child), nor while a probe of this child runs: its answer comes, and
// if it fails the next probe runs at once (probeAgain). A second probe then
// would only compete with the module check for Prosody. Otherwise (the last
// probe failed, or none ran) probe now, not after the startup backoff.
// Called under Monitor.mu.
func readyReprobe(in *inputs) bool {
	if in.probeOK {
		return false
	}
	if in.probeGen != 0 && in.probeGen == in.childGen {
		in.probeAgain = true
		return false
	}
	return true
}

// dropLogEvery is the least time between two logs of dropped notify datagrams:
// a process flooding the socket must not flood the log too.
const dropLogEvery = 10 * time.Second

// dropLog rate-limits the debug log of dropped notify datagrams. Guarded by Monitor.mu.
type dropLog struct {
	last       time.Time
	suppressed int
}

// dropNotify counts one datagram not from the child, and logs it at debug
// level at most once per dropLogEvery (with how many were not logged).
func (m *Monitor) dropNotify(pid int) {
	m.met.notifyDropped.Inc()
	m.mu.Lock()
	now := time.Now()
	if now.Sub(m.dropped.last) < dropLogEvery {
		m.dropped.suppressed++
		m.mu.Unlock()
		return
	}
	suppressed := m.dropped.suppressed
	m.dropped.last, m.dropped.suppressed = now, 0
	child := m.in.childPID
	m.mu.Unlock()
	m.log.Debug("notify message dropped: not from the supervised child", zap.Int("pid", pid),
		zap.Int("child_pid", child), zap.Int("dropped_since_last_log", suppressed))
}
