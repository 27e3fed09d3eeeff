package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// runProsody is the Prosody pipeline: settings, init stages, then prosody -F
// supervised, with health, reload on change and admin bootstrap beside it.
func (a *app) runProsody(args, env []string, stdout, stderr io.Writer) int {
	t0 := time.Now()
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitConfig
	}
	log := newLogger(st.LogFormat, st.LogLevel, stderr)
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	s, err := newState(st, log, stderr, "prosody.cfg.lua")
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitConfig
	}
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitSoftware
	}
	// The runtime directory must exist before the notify socket is bound in it,
	// so this stage runs before the others and is reported once the monitor exists.
	tDirs := time.Now()
	if err := stageDirectories(context.Background(), s); err != nil {
		fmt.Fprintf(stderr, "entrypoint: stage directories: %v\n", err)
		return exitConfig
	}
	dDirs := time.Since(tDirs)

	mon, err := health.New(health.Config{
		Listen:     st.HealthListen,
		Interval:   st.HealthInterval,
		Mode:       health.ModeProsody,
		C2SAddr:    probeAddr(st),
		Domain:     st.Domains()[0],
		UseNotify:  true,
		NotifyPath: filepath.Join(st.RuntimeDir, "notify.sock"),
		Logger:     log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: start the health endpoints (PROSODY_HEALTH_LISTEN) and the notify socket (in PROSODY_RUNTIME_DIR): %v\n", err)
		return exitConfig
	}
	mon.StageDone("validate-env", tDirs.Sub(t0), nil)
	mon.StageDone("directories", dDirs, nil)

	// wg.Wait is deferred before cancel so that it runs after it: an early
	// return cancels the goroutines' context first, then waits for them.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg.Go(func() {
		if err := mon.Run(ctx); err != nil {
			log.Error("health server", zap.Error(err))
		}
	})

	if code, ok, stopped := runStagesStoppable(ctx, &wg, prosodyStages(s, env), s, mon, stderr); stopped {
		log.Info("stop requested during the init stages; prosody was not started")
		return 0
	} else if !ok {
		mon.GaveUp(code)
		return code
	}
	mon.SetInfo(infoFor(s))
	for _, h := range s.certs.Hosts {
		mon.CertExpiry(h.Host, h.NotAfter)
	}
	mon.SetStagesDone()

	r := newReloader(s, env, mon, log)
	sup, err := supervise.New(supervise.Config{
		Path:        "prosody",
		Args:        append([]string{"-F", "--config", s.configPath}, args[min(1, len(args)):]...),
		Env:         childEnv(env, s, mon.NotifySocket()),
		Dir:         st.DataDir,
		Cred:        s.cred,
		StopTimeout: st.StopTimeout,
		Restart:     restartPolicy(st, true),
		Signals:     a.signals,
		Logger:      log.Named("supervise"),
		Observer:    mon,
		// SIGHUP to the entrypoint means "re-render and reload now"; Prosody
		// itself only ever gets a SIGHUP once it is ready.
		// SIGUSR1/SIGUSR2 (log rotation in some setups) kill a Prosody whose
		// handlers do not exist yet, so they are dropped until it is ready.
		Intercept: func(sig os.Signal) bool {
			switch sig {
			case syscall.SIGHUP:
				r.trigger("SIGHUP")
				return true
			case syscall.SIGUSR1, syscall.SIGUSR2:
				if mon.Readiness().State != health.StateReady {
					log.Warn("signal dropped: prosody is not ready, and would die of it", zap.String("signal", sig.String()))
					return true
				}
			}
			return false
		},
		Stderr: stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitSoftware
	}
	r.sup = sup
	s.sup = sup
	wg.Go(func() { r.run(ctx) })
	wg.Go(func() { bootstrapAdmins(ctx, s, mon, log) })
	code := sup.Run(ctx)
	cancel()
	return code
}

// probeAddr is where the readiness probe reaches c2s: loopback unless the
// operator bound Prosody to specific addresses only.
func probeAddr(st *settings.Settings) string {
	host := "127.0.0.1"
	if len(st.Interfaces) > 0 {
		host = ""
		for _, i := range st.Interfaces {
			switch i {
			case "*", "127.0.0.1":
				host = "127.0.0.1"
			case "::", "::1":
				if host == "" {
					host = "::1"
				}
			}
		}
		if host == "" {
			host = st.Interfaces[0]
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(st.C2SPort))
}

func restartPolicy(st *settings.Settings, prosody bool) supervise.Policy {
	mode := supervise.RestartMode(st.RestartPolicy(prosody))
	if st.RestartMax == 0 {
		mode = supervise.ModeNever // "0 restarts allowed", not the package default
	}
	return supervise.Policy{
		Mode:    mode,
		Max:     st.RestartMax,
		Window:  st.RestartWindow,
		Backoff: st.RestartBackoff,
	}
}

func infoFor(s *state) health.Info {
	names := make([]string, len(s.plan.Features))
	for i, f := range s.plan.Features {
		names[i] = f.Name
	}
	return health.Info{
		Profile:     s.plan.Profile,
		Environment: s.plan.Environment,
		Features:    names,
		ConfigHash:  s.hash,
		Hosts:       planHosts(s.plan),
	}
}

// runStagesStoppable runs the init stages so that SIGTERM or SIGINT cancels
// them (a hook or a storage migration can take long, and `docker stop` must
// not wait for it). The supervisor gets the same signal later and never starts
// prosody. stopped reports that a stop signal ended the stages.
func runStagesStoppable(ctx context.Context, wg *sync.WaitGroup, stages []initsteps.Stage[*state], s *state, mon *health.Monitor, stderr io.Writer) (code int, ok, stopped bool) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(stop)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got atomic.Bool
	wg.Go(func() {
		select {
		case <-stop:
			got.Store(true)
			mon.Stopping()
			cancel()
		case <-sctx.Done():
		}
	})
	code, ok = runStages(sctx, stages, s, mon, stderr)
	cancel()
	return code, ok, got.Load()
}
