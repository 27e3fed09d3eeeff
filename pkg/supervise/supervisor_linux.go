package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Supervisor runs one main child: see Run. Its methods are safe for
// concurrent use.
type Supervisor struct {
	cfg    Config
	env    []string
	log    *zap.Logger
	obs    Observer
	stderr io.Writer

	ran        atomic.Bool
	tapW       atomic.Pointer[os.File] // the children's stdout pipe while Config.Stdout is tapped
	done       chan struct{}           // closed when Run returns
	restartReq chan restartRequest

	// mu is held while reaping and while signalling the main child, so a
	// signal never reaches a pid that was reaped (and maybe reused).
	mu  sync.Mutex
	pid int
	// reaping is true while Run is the reaper; aux maps the pids started by
	// Exec to where their exit status goes. Both are guarded by mu.
	reaping bool
	aux     map[int]chan unix.WaitStatus
}

// New validates cfg and returns a Supervisor that has not started anything.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Path == "" {
		return nil, errors.New("supervise config: Path is empty: set the program to run")
	}
	if cfg.Signals == nil {
		return nil, errors.New("supervise config: Signals is nil: call supervise.Notify first in main and pass its result")
	}
	if cfg.StopTimeout < 0 {
		return nil, fmt.Errorf("supervise config: StopTimeout %s is negative: use 0 for the default %s or a positive duration", cfg.StopTimeout, DefaultStopTimeout)
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	p, err := cfg.Restart.normalize()
	if err != nil {
		return nil, fmt.Errorf("supervise config: %w", err)
	}
	cfg.Restart = p
	s := &Supervisor{
		cfg:        cfg,
		env:        cfg.Env,
		log:        cfg.Logger,
		obs:        cfg.Observer,
		stderr:     cfg.Stderr,
		done:       make(chan struct{}),
		restartReq: make(chan restartRequest),
	}
	if s.env == nil {
		s.env = os.Environ()
	}
	if cfg.Cred != nil && cfg.Cred.Home != "" {
		s.env = withHome(s.env, cfg.Cred.Home)
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	if s.stderr == nil {
		s.stderr = os.Stderr
	}
	return s, nil
}

// PID returns the main child's pid, 0 when no child runs.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Signal sends sig to the main child only (not its group). It returns
// ErrNoChild when no child runs (not yet, between restarts, or after Run).
func (s *Supervisor) Signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pid == 0 {
		return ErrNoChild
	}
	if err := unix.Kill(s.pid, sig); err != nil {
		return fmt.Errorf("send %s to child %d: %w", signalName(sig), s.pid, err)
	}
	s.log.Info("signalled child", zap.Int("pid", s.pid), zap.String("signal", signalName(sig)))
	return nil
}

// Restart stops the child group gracefully (SIGTERM, grace, SIGKILL) and
// starts the child again at once; it is not counted by the restart policy.
// During a restart backoff it starts the child at once. It blocks until the
// new child has started (nil) or could not be (error), and returns
// ErrStopping when a stop is under way, ErrNotRunning once Run has returned.
// It blocks until Run is running; never call it from Intercept or Observer.
func (s *Supervisor) Restart() error { return s.restart(0) }

// RestartChild is the "restart this child now" entry point for a caller that
// judged one particular child (a watchdog that saw it wedged): it restarts
// the child only while pid is the running child, so a decision about a child
// that has meanwhile exited or been replaced does nothing. The stop is
// Restart's: SIGTERM to the child's group followed by SIGCONT (a stopped
// process acts on SIGTERM only once continued), SIGKILL to the group after
// Config.StopTimeout, then a new child at once, not counted by the restart
// policy. It returns ErrNotCurrent when pid is not the running child (also
// during a restart backoff: the supervisor already replaces it), ErrStopping
// during a stop, ErrNotRunning once Run has returned, and otherwise blocks
// like Restart until the new child started (nil) or could not be (error).
// pid must be positive. Never call it from Intercept or Observer.
func (s *Supervisor) RestartChild(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("restart child %d: %w", pid, ErrNotCurrent)
	}
	return s.restart(pid)
}

// restartRequest is one Restart (pid 0) or RestartChild call.
type restartRequest struct {
	pid   int
	reply chan error
}

func (s *Supervisor) restart(pid int) error {
	reply := make(chan error, 1)
	select {
	case s.restartReq <- restartRequest{pid: pid, reply: reply}:
	case <-s.done:
		return ErrNotRunning
	}
	select {
	case err := <-reply:
		return err
	case <-s.done:
		// Run may have replied just before returning.
		select {
		case err := <-reply:
			return err
		default:
			return ErrNotRunning
		}
	}
}

// Run starts the child and supervises it until the end, and returns the
// entrypoint's exit code: the child's code, 128+N when signal N ended it,
// 127/126 when it cannot be executed (with a message on Config.Stderr), or
// 0 when a stop was asked before the child started. Cancelling ctx is a
// graceful stop (like SIGTERM). Run returns only once the child's process
// group is empty and every child reaped so far is waited for. Run may be
// called once; a second call returns 70 (EX_SOFTWARE) at once.
//
// Run is the one reaper: it calls wait4(-1) on every SIGCHLD until nothing
// is left, and when the entrypoint is not PID 1 it makes itself a child
// subreaper so that orphans of the child are re-parented to it.
func (s *Supervisor) Run(ctx context.Context) int {
	if !s.ran.CompareAndSwap(false, true) {
		s.log.Error("supervisor run called twice")
		return 70
	}
	defer close(s.done)
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			s.log.Warn("cannot become child subreaper: orphans of the child will not be reaped here", zap.Error(err))
		}
	}
	s.mu.Lock()
	s.reaping = true
	s.mu.Unlock()
	r := &run{s: s, ctxDone: ctx.Done()}
	defer r.stopTimers()
	if s.cfg.Stdout != nil {
		stop, err := s.startStdoutTap()
		if err != nil {
			s.log.Warn("cannot tap the child's output; it writes to the entrypoint's stdout", zap.Error(err))
		} else {
			defer stop()
		}
	}
	code := r.loop(ctx)
	r.reap()
	s.stopReaping()
	s.log.Info("supervisor done", zap.Int("code", code))
	return code
}

// run is the state of one Run; only Run's goroutine touches it.
type run struct {
	s        *Supervisor
	ctxDone  <-chan struct{}
	pgid     int  // group of the current or last child; 0 when nothing is left to wait for
	alive    bool // the main child is not reaped yet
	lastCode int
	termSent bool // the current group got its SIGTERM (stop, restart or leftovers)
	killed   bool // the current group got SIGKILL
	stopping bool
	waiters  []chan error // Restart calls waiting for the new child
	restarts restartLog

	killTimer    *time.Timer
	killC        <-chan time.Time
	backoffTimer *time.Timer
	backoffC     <-chan time.Time
	pollTicker   *time.Ticker
	pollC        <-chan time.Time
}

func (r *run) loop(ctx context.Context) int {
	s := r.s
	// Signals that arrived before the first start: a stop among them means
	// the child is never started.
	var early []os.Signal
	for drained := false; !drained; {
		select {
		case sig := <-s.cfg.Signals.other:
			early = append(early, sig)
		default:
			drained = true
		}
	}
	var pending []syscall.Signal
	for _, sig := range early {
		switch {
		case r.intercepted(sig):
		case isStop(sig):
			s.obs.Stopping()
			s.log.Info("stop requested before the child started", zap.String("signal", sig.String()))
			return 0
		default:
			pending = append(pending, sig.(syscall.Signal))
		}
	}
	if ctx.Err() != nil {
		s.obs.Stopping()
		s.log.Info("stop requested before the child started", zap.String("reason", "context cancelled"))
		return 0
	}
	if code, ok := r.start(); !ok {
		return code
	}
	for _, sig := range pending {
		r.forward(sig)
	}
	for {
		if code, done := r.settle(); done {
			return code
		}
		select {
		case <-s.cfg.Signals.chld:
			r.reap()
		case <-r.pollC:
			r.reap()
		case sig := <-s.cfg.Signals.other:
			r.onSignal(sig)
		case <-r.ctxDone:
			r.ctxDone = nil
			r.stop(unix.SIGTERM, "context cancelled")
		case req := <-s.restartReq:
			r.onRestart(req)
		case <-r.killC:
			r.kill()
		case <-r.backoffC:
			r.backoffC = nil
			if code, ok := r.start(); !ok {
				return code
			}
		}
	}
}

// settle decides what follows once the main child is gone and its group is
// empty: return, restart now (Restart), restart after a backoff, or give up.
func (r *run) settle() (int, bool) {
	s := r.s
	if r.alive || r.backoffC != nil {
		return 0, false
	}
	if groupAlive(r.pgid) {
		if r.pollC == nil {
			// Not every group member is our child, so its end may come
			// without a SIGCHLD here: poll until the group is empty.
			r.pollTicker = time.NewTicker(20 * time.Millisecond)
			r.pollC = r.pollTicker.C
		}
		return 0, false
	}
	r.pgid = 0
	r.stopPoll()
	r.stopKill()
	if r.stopping {
		return r.lastCode, true
	}
	if len(r.waiters) > 0 {
		code, ok := r.start()
		return code, !ok
	}
	if !s.cfg.Restart.wants(r.lastCode) {
		return r.lastCode, true
	}
	attempt, ok := r.restarts.next(s.cfg.Restart, time.Now())
	if !ok {
		// The observer first: once the log says so, /livez already answers 503.
		s.obs.GaveUp(r.lastCode)
		s.log.Error("child keeps failing, giving up",
			zap.Int("code", r.lastCode), zap.Int("restarts", attempt), zap.Duration("window", s.cfg.Restart.Window))
		return r.lastCode, true
	}
	d := s.cfg.Restart.delay(attempt)
	s.log.Info("restarting child", zap.Int("attempt", attempt), zap.Duration("delay", d), zap.Int("last_code", r.lastCode))
	s.obs.Restarting(attempt, d)
	r.backoffTimer = time.NewTimer(d)
	r.backoffC = r.backoffTimer.C
	return 0, false
}

// start spawns the child, after BeforeStart; on failure it reports and
// returns the exit code.
func (r *run) start() (int, bool) {
	s := r.s
	if f := s.cfg.BeforeStart; f != nil {
		if err := f(); err != nil {
			fmt.Fprintf(s.stderr, "cannot start the child: before start: %v (exit %d)\n", err, CodeBeforeStart)
			s.log.Error("cannot start child: before start", zap.String("path", s.cfg.Path), zap.Int("code", CodeBeforeStart), zap.Error(err))
			r.replyWaiters(fmt.Errorf("restart child: before start: %w", err))
			r.lastCode = CodeBeforeStart
			return CodeBeforeStart, false
		}
	}
	pid, err := s.spawn()
	if err != nil {
		code := CodeNotExecutable
		var se *startError
		if errors.As(err, &se) {
			code = se.code
		}
		fmt.Fprintf(s.stderr, "cannot start the child: %v (exit %d)\n", err, code)
		s.log.Error("cannot start child", zap.String("path", s.cfg.Path), zap.Int("code", code), zap.Error(err))
		r.replyWaiters(fmt.Errorf("restart child: %w", err))
		r.lastCode = code
		return code, false
	}
	s.mu.Lock()
	s.pid = pid
	s.mu.Unlock()
	r.pgid, r.alive, r.termSent, r.killed = pid, true, false, false
	s.log.Info("child started", zap.Int("pid", pid), zap.String("path", s.cfg.Path))
	s.obs.ChildStarted(pid)
	r.replyWaiters(nil)
	return 0, true
}

// reap waits for every child that has ended, without blocking.
func (r *run) reap() {
	s := r.s
	var (
		orphans  int
		mainPID  int
		mainStat unix.WaitStatus
	)
	s.mu.Lock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			if err != nil && !errors.Is(err, unix.ECHILD) {
				s.log.Error("wait for children", zap.Error(err))
			}
			break
		}
		if ch, ok := s.aux[pid]; ok {
			ch <- ws
			delete(s.aux, pid)
			continue
		}
		if pid == s.pid {
			mainPID, mainStat, s.pid = pid, ws, 0
		} else {
			orphans++
		}
	}
	s.mu.Unlock()
	if orphans > 0 {
		s.log.Debug("reaped orphans", zap.Int("count", orphans))
		s.obs.Reaped(orphans)
	}
	if mainPID != 0 {
		r.mainExited(mainPID, mainStat)
	}
}

// mainExited records the main child's end and clears its leftover group.
func (r *run) mainExited(pid int, ws unix.WaitStatus) {
	s := r.s
	code, sig := exitCode(ws)
	r.alive, r.lastCode = false, code
	s.log.Info("child exited", zap.Int("pid", pid), zap.Int("code", code), zap.String("signal", sig))
	s.obs.ChildExited(pid, code, sig)
	if !r.termSent && groupAlive(r.pgid) {
		s.log.Info("terminating processes left in the child's group", zap.Int("pgid", r.pgid))
		r.terminate(unix.SIGTERM)
	}
}

// onSignal acts on one received signal other than SIGCHLD. SIGPIPE is
// never forwarded: with every signal registered, the Go runtime delivers
// the SIGPIPE of the entrypoint's own write to a closed socket or pipe (a
// health client that hung up) to the channel, and kill(2) of SIGPIPE is
// indistinguishable from it; the write itself fails with EPIPE.
func (r *run) onSignal(sig os.Signal) {
	if sig == unix.SIGPIPE {
		r.s.log.Debug("SIGPIPE not forwarded: it is the entrypoint's own broken write")
		return
	}
	if r.intercepted(sig) {
		return
	}
	if isStop(sig) {
		r.stop(sig.(syscall.Signal), "signal")
		return
	}
	r.forward(sig.(syscall.Signal))
}

// forward passes sig to the main child, or to its group for the
// termination signals.
func (r *run) forward(sig syscall.Signal) {
	s := r.s
	if !r.alive {
		s.log.Debug("no child to forward the signal to", zap.String("signal", signalName(sig)))
		return
	}
	if toGroup(sig) {
		if err := unix.Kill(-r.pgid, sig); err == nil {
			s.log.Info("forwarded signal to child group", zap.Int("pgid", r.pgid), zap.String("signal", signalName(sig)))
			return
		}
	}
	if err := s.Signal(sig); err != nil && !errors.Is(err, ErrNoChild) {
		s.log.Warn("forward signal", zap.Error(err))
	}
}

func (r *run) intercepted(sig os.Signal) bool {
	if f := r.s.cfg.Intercept; f != nil && f(sig) {
		r.s.log.Debug("signal intercepted", zap.String("signal", sig.String()))
		return true
	}
	return false
}

// stop begins the graceful stop, or passes a repeated stop signal on.
func (r *run) stop(sig syscall.Signal, reason string) {
	s := r.s
	if r.stopping {
		if r.alive || groupAlive(r.pgid) {
			_ = unix.Kill(-r.pgid, sig)
		}
		return
	}
	r.stopping = true
	// Readiness first: probes must see "stopping" before anything else happens.
	s.obs.Stopping()
	s.log.Info("stopping", zap.String("reason", reason), zap.String("signal", signalName(sig)),
		zap.Int("pid", s.PID()), zap.Duration("grace", s.cfg.StopTimeout))
	r.replyWaiters(ErrStopping)
	if r.backoffC != nil {
		r.backoffTimer.Stop()
		r.backoffC = nil
		return
	}
	if r.alive || groupAlive(r.pgid) {
		r.terminate(sig)
	}
}

// onRestart handles one Restart or RestartChild call.
func (r *run) onRestart(req restartRequest) {
	if r.stopping {
		req.reply <- ErrStopping
		return
	}
	if req.pid != 0 && (!r.alive || req.pid != r.s.PID()) {
		req.reply <- fmt.Errorf("restart child %d: %w", req.pid, ErrNotCurrent)
		return
	}
	r.waiters = append(r.waiters, req.reply)
	r.s.log.Info("restart requested", zap.Int("pid", r.s.PID()))
	if r.backoffC != nil {
		r.backoffTimer.Stop()
		r.backoffC = nil
		return
	}
	if r.alive && !r.termSent {
		r.terminate(unix.SIGTERM)
	}
}

// terminate sends sig, then SIGCONT, to the child's group and arms the
// SIGKILL deadline. SIGCONT (as systemd sends after its kill signal) lets a
// stopped process (SIGSTOP, a debugger gone) act on sig within the grace
// instead of waiting for SIGKILL; a running one ignores it.
func (r *run) terminate(sig syscall.Signal) {
	if err := unix.Kill(-r.pgid, sig); err != nil && r.alive {
		if errors.Is(err, unix.EPERM) {
			r.s.log.Error("not allowed to signal the child's group: is CAP_KILL dropped? the stop will end in SIGKILL after the grace",
				zap.Int("pgid", r.pgid), zap.String("signal", signalName(sig)), zap.Error(err))
		}
		// The main child left its group: reach it directly.
		if err := r.s.Signal(sig); err != nil {
			r.s.log.Error("signal the child", zap.String("signal", signalName(sig)), zap.Error(err))
		}
		_ = r.s.Signal(unix.SIGCONT)
	} else {
		_ = unix.Kill(-r.pgid, unix.SIGCONT)
	}
	r.termSent = true
	if r.killC == nil && !r.killed {
		r.killTimer = time.NewTimer(r.s.cfg.StopTimeout)
		r.killC = r.killTimer.C
	}
}

// kill ends the grace period: SIGKILL to the whole group.
func (r *run) kill() {
	s := r.s
	r.killC, r.killed = nil, true
	s.log.Warn("grace period over, killing the child's group", zap.Int("pgid", r.pgid), zap.Duration("grace", s.cfg.StopTimeout))
	_ = unix.Kill(-r.pgid, unix.SIGKILL)
	if r.alive {
		_ = s.Signal(unix.SIGKILL)
	}
}

func (r *run) replyWaiters(err error) {
	for _, w := range r.waiters {
		w <- err
	}
	r.waiters = nil
}

func (r *run) stopKill() {
	if r.killTimer != nil {
		r.killTimer.Stop()
	}
	r.killC = nil
}

func (r *run) stopPoll() {
	if r.pollTicker != nil {
		r.pollTicker.Stop()
	}
	r.pollC = nil
}

func (r *run) stopTimers() {
	r.stopKill()
	r.stopPoll()
	if r.backoffTimer != nil {
		r.backoffTimer.Stop()
	}
	r.replyWaiters(ErrNotRunning)
}

// isStop reports whether sig asks the entrypoint to stop.
func isStop(sig os.Signal) bool {
	return sig == unix.SIGTERM || sig == unix.SIGINT
}
