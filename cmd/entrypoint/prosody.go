package main

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
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// runProsody is the Prosody pipeline: the preamble, the health server, the
// init stages, then prosody -F supervised, with reload on change and the
// admin bootstrap beside it; args are extra arguments for prosody. Its parts
// run as one group: the first to fail ends the others.
func (a *app) runProsody(args, env []string, stderr io.Writer) int {
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitSoftware
	}
	s := initsteps.New(initsteps.Config{Env: env, Stderr: stderr, Logger: initsteps.RootLogger(stderr, "")})
	pre, err := initsteps.Run(context.Background(), initsteps.Preamble(), s, nil, nil)
	defer s.Log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	if err != nil {
		return stageFailure(stderr, err)
	}
	st := s.Settings
	dbNetwork, dbAddr := st.DatabaseAddr()
	plog := health.NewProsodyLog(os.Stdout) // Prosody's log, teed: the module check quotes its errors
	mon, err := health.New(health.Config{
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
	})
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: start the health endpoints (PROSODY_HEALTH_LISTEN) and the notify socket (in PROSODY_RUNTIME_DIR): %v\n", err)
		return exitConfig
	}
	for _, r := range pre {
		mon.StageDone(r.Name, r.Duration, r.Err)
	}

	code := exitSoftware
	var g rungroup.Group
	g.Go("health", mon.Run)
	g.Main("prosody", func(ctx context.Context) error {
		var err error
		code, err = a.serve(ctx, s, mon, plog, args)
		return err
	})
	if err := g.Run(context.Background()); err != nil {
		s.Log.Error("entrypoint part failed; stopping", zap.Error(err))
		if code == 0 {
			code = exitSoftware
		}
	}
	return code
}

// serve runs the init stages, then supervises prosody with the reloader and
// the admin bootstrap as one group, and returns the exit code. A stop signal
// during the stages ends it with 0 before prosody starts.
func (a *app) serve(ctx context.Context, s *initsteps.State, mon *health.Monitor, plog io.Writer, extraArgs []string) (int, error) {
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
		return exitSoftware, nil
	case err != nil:
		code := stageFailure(s.Stderr, err)
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
		Args:        append([]string{"-F", "--config", s.Paths.Config}, extraArgs...),
		Env:         s.ChildEnv(mon.NotifySocket()),
		Dir:         st.DataDir,
		Cred:        s.Cred,
		StopTimeout: st.StopTimeout,
		Restart:     initsteps.RestartPolicy(st, true),
		Signals:     a.signals,
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
		return exitSoftware, err
	}
	// The reaper runs from now on: helper commands must go through it.
	s.Exec = sup.Exec
	r, err = reload.New(reload.Config{Current: s, Monitor: mon, Supervisor: sup, Logger: s.Log.Named("reload")})
	if err != nil {
		return exitSoftware, err
	}
	code := exitSoftware
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

// stageFailure prints a failed stage the way an operator needs it and
// returns the exit code: 73 for a full volume, 78 for configuration, 1 for
// anything else.
func stageFailure(stderr io.Writer, err error) int {
	var probs *settings.Problems
	if errors.As(err, &probs) {
		printSettingsError(stderr, probs)
		return exitConfig
	}
	fmt.Fprintf(stderr, "entrypoint: %v\n", err)
	switch {
	case initsteps.IsNoSpace(err):
		return exitNoSpace
	case initsteps.IsConfig(err):
		return exitConfig
	}
	return exitFailed
}
