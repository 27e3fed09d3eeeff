// Package server runs the entrypoint's Prosody mode: the preamble, the health
// server, the init stages, then prosody -F supervised with the reloader, the
// ACME renewals, the watchdog and the admin bootstrap beside it. It is the
// one place those parts are made and wired together; each of them is owned
// by its own package. It lives apart from pkg/initsteps because it wires the
// reloader, and pkg/reload builds on initsteps' State (initsteps cannot
// import it back).
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/reload"
	"github.com/prosody-pfe/prosody-pfe/pkg/rungroup"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// Config is what Run needs. Signals and Fail are required.
type Config struct {
	// Env is the entrypoint's environment (os.Environ()).
	Env []string
	// Args are extra arguments for prosody, after -F --config FILE.
	Args []string
	// Signals is the entrypoint's signal registration; the supervisor owns it.
	Signals *supervise.Signals
	// Stdout receives Prosody's log, teed through the health monitor (which
	// quotes its error lines); nil: os.Stdout.
	Stdout io.Writer
	// Stderr receives the entrypoint's log and messages; nil: os.Stderr.
	Stderr io.Writer
	// Fail reports an error that ends the run before prosody starts (a bad
	// environment, a failed stage, a health server that cannot listen) and
	// returns the exit code for it: the entrypoint's exit-code table. The
	// error keeps its kind (initsteps.IsConfig, initsteps.IsNoSpace,
	// *settings.Problems).
	Fail func(error) int
}

// Run runs the Prosody mode until prosody ends for good, and returns its exit
// code (the supervisor's: 128+N for a signal), 0 when SIGTERM or SIGINT came
// during the init stages (prosody was not started), or what Fail returned.
// Its parts run as one group: the first to fail ends the others, and that
// failure is the error, already logged; the code is then prosody's if it ran,
// else 0. Run returns once every part has ended.
func Run(ctx context.Context, cfg Config) (int, error) {
	if cfg.Signals == nil || cfg.Fail == nil {
		return 0, errors.New("server: Config.Signals and Config.Fail are required")
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	s := initsteps.New(initsteps.Config{Env: cfg.Env, Stderr: cfg.Stderr, Logger: initsteps.RootLogger(cfg.Stderr, "")})
	pre, err := initsteps.Run(ctx, initsteps.Preamble(), s, nil, nil)
	defer s.Log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	if err != nil {
		return cfg.Fail(err), nil
	}
	plog := health.NewProsodyLog(cfg.Stdout) // Prosody's log, teed: the module check quotes its errors
	mon, err := health.New(monitorConfig(s, plog))
	if err != nil {
		return cfg.Fail(initsteps.ConfigError{Err: fmt.Errorf("start the health endpoints (PROSODY_HEALTH_LISTEN) and the notify socket (in PROSODY_RUNTIME_DIR): %w", err)}), nil
	}
	for _, r := range pre {
		mon.StageDone(r.Name, r.Duration, r.Err)
	}

	code := 0
	var g rungroup.Group
	g.Go("health", mon.Run)
	g.Main("prosody", func(ctx context.Context) error {
		var err error
		code, err = serve(ctx, cfg, s, mon, plog)
		return err
	})
	err = g.Run(ctx)
	if err != nil {
		s.Log.Error("entrypoint part failed; stopping", zap.Error(err))
	}
	return code, err
}

// monitorConfig is the health monitor of the Prosody mode under the
// settings of s.
func monitorConfig(s *initsteps.State, plog *health.ProsodyLog) health.Config {
	st := s.Settings
	dbNetwork, dbAddr := st.DatabaseAddr()
	return health.Config{
		ProsodyLog:      plog,
		VerifyFile:      filepath.Join(st.RuntimeDir, health.VerifyFile),
		Listen:          st.HealthListen,
		Interval:        st.HealthInterval,
		Mode:            health.ModeProsody,
		C2SAddr:         st.C2SProbeAddr(),
		Domain:          st.Domains()[0],
		UseNotify:       true,
		NotifyPath:      filepath.Join(st.RuntimeDir, "notify.sock"),
		DBNetwork:       dbNetwork,
		DBAddr:          dbAddr,
		WatchdogTimeout: st.WatchdogTimeout,
		StatusToken:     st.StatusToken.Reveal(),
		NotifyUID:       s.UID, // prosody's alone (mode 0600); -1 when not root
		NotifyGID:       s.GID,
		Logger:          s.Log,
	}
}

// serve runs the init stages, then supervises prosody with the reloader and
// the admin bootstrap as one group, and returns the exit code. A stop signal
// during the stages ends it with 0 before prosody starts.
func serve(ctx context.Context, cfg Config, s *initsteps.State, mon *health.Monitor, plog io.Writer) (int, error) {
	// SIGTERM or SIGINT cancels the stages (a hook or a storage migration can
	// take long, and `docker stop` must not wait for it). The supervisor gets
	// the same signal from its own registration and never starts prosody.
	sctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	_, err := initsteps.Run(sctx, initsteps.Startup(s), s, s.Log, mon)
	stopped := sctx.Err() != nil && ctx.Err() == nil
	stop()
	switch {
	case stopped:
		mon.Stopping()
		s.Log.Info("stop requested during the init stages; prosody was not started")
		return 0, nil
	case ctx.Err() != nil:
		return 0, nil // another part failed: the group reports it
	case err != nil:
		code := cfg.Fail(err)
		mon.GaveUp(code)
		return code, nil
	}
	mon.SetInfo(reload.Info(s))
	for _, h := range s.Certs.Hosts {
		mon.CertExpiry(h.Host, h.NotAfter)
	}
	mon.SetStagesDone()

	st := s.Settings
	// The sockets held for Prosody (PROSODY_SOCKET_ACTIVATION): every start
	// of Prosody inherits them; they close when the entrypoint ends.
	var extraFiles func() ([]*os.File, []string)
	if s.Listeners != nil {
		defer s.Listeners.Close()
		extraFiles = s.Listeners.Files
		mon.SetListeners(s.Listeners)
	}
	var r *reload.Reloader // set before the supervisor runs; Intercept needs it
	sup, err := supervise.New(supervise.Config{
		Path:        "prosody",
		Args:        append([]string{"-F", "--config", s.Paths.Config}, cfg.Args...),
		Env:         s.ChildEnv(mon.NotifySocket()),
		Dir:         st.DataDir,
		Cred:        s.Cred,
		StopTimeout: st.StopTimeout,
		Restart:     initsteps.RestartPolicy(st, true),
		Signals:     cfg.Signals,
		Logger:      s.Log.Named("supervise"),
		Observer:    mon,
		// SIGHUP to the entrypoint means "re-render and reload now"; Prosody
		// itself only ever gets a SIGHUP once it is ready.
		// SIGUSR1/SIGUSR2 (log rotation in some setups) kill a Prosody whose
		// handlers do not exist yet, so they are dropped until it is ready.
		Intercept: func(sig os.Signal) bool {
			switch sig {
			case syscall.SIGHUP:
				r.Trigger("SIGHUP")
				return true
			case syscall.SIGUSR1, syscall.SIGUSR2:
				if !mon.Readiness().Answers() {
					s.Log.Warn("signal dropped: prosody is not ready, and would die of it", zap.String("signal", sig.String()))
					return true
				}
			}
			return false
		},
		// Every start of Prosody (a crash, a kill, a restart for a change)
		// reads the rendered bytes, whatever happened to the file meanwhile.
		BeforeStart: func() error {
			_, err := r.EnsureLive()
			return err
		},
		// Prosody 13 ignores its own `umask` option: the child gets it.
		Umask:      func() uint32 { return r.Umask() },
		ExtraFiles: extraFiles,
		Stderr:     s.Stderr,
		Stdout:     plog,
	})
	if err != nil {
		return 0, err
	}
	// The reaper runs from now on: helper commands must go through it.
	s.Exec = sup.Exec
	r, err = reload.New(reload.Config{Current: s, Monitor: mon, Supervisor: sup, Logger: s.Log.Named("reload")})
	if err != nil {
		return 0, err
	}
	code := 0
	var g rungroup.Group
	g.Main("supervisor", func(ctx context.Context) error {
		code = sup.Run(ctx)
		return nil
	})
	g.Go("reloader", r.Run)
	if s.ACME != nil { // renewals install through the reloader, like a renewed mounted certificate
		g.Go("acme", func(ctx context.Context) error {
			return s.ACME.Run(ctx, mon, func() { r.Trigger("acme certificate renewed") })
		})
	}
	g.Go("watchdog", func(ctx context.Context) error { return mon.RunWatchdog(ctx, sup.RestartChild) })
	g.Go("admins", func(ctx context.Context) error {
		initsteps.BootstrapAdmins(ctx, s, mon.WaitReady)
		return nil
	})
	g.Go("verify-on-start", func(ctx context.Context) error {
		initsteps.VerifyOnStart(ctx, s, mon.WaitReady)
		return nil
	})
	return code, g.Run(ctx)
}
