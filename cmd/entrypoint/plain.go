package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// supervisorVars are the settings plain init obeys; a problem with one of them
// stops it. Problems with the Prosody variables are only warnings here: a
// `docker run IMAGE sh` to debug must not be blocked by a bad PROSODY_DOMAIN.
var supervisorVars = map[string]bool{
	"PROSODY_STOP_TIMEOUT": true, "PROSODY_RESTART": true, "PROSODY_RESTART_MAX": true,
	"PROSODY_RESTART_WINDOW": true, "PROSODY_RESTART_BACKOFF": true, "PROSODY_LOG_FORMAT": true,
	"PROSODY_LOG_LEVEL": true, "PROSODY_HEALTH_LISTEN": true, "PROSODY_HEALTH_INTERVAL": true,
	"PROSODY_STATUS_TOKEN": true, "PROSODY_STATUS_TOKEN_FILE": true,
	"PROSODY_UID": true, "PROSODY_GID": true,
}

// runPlain is plain init for any command: every PID-1 duty, no Prosody stages.
func (a *app) runPlain(argv, env []string, stderr io.Writer) int {
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitSoftware
	}
	t0 := time.Now()
	st, warnings, tolerated, err := settings.LoadLenient(env, func(name string) bool { return supervisorVars[name] })
	if err != nil {
		printSettingsError(stderr, err)
		return exitConfig
	}
	for _, p := range tolerated {
		fmt.Fprintf(stderr, "entrypoint: warning (not used by plain init): %s\n", p)
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "entrypoint: warning: %s\n", w)
	}
	// Who the child runs as: gosu's job, done by PID 1 so that it keeps its
	// own privileges for the reaper and the signals.
	cred, err := supervise.RunAs(st.UserSpec, st.GroupSpec)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: choose the user the command runs as (PROSODY_UID=%q, PROSODY_GID=%q): %v\n", st.UserSpec, st.GroupSpec, err)
		return exitConfig
	}
	log := initsteps.NewLogger(st.LogFormat, st.LogLevel, stderr)
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit

	// wg.Wait is deferred before cancel so that it runs after it: an early
	// return cancels the goroutines' context first, then waits for them.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var obs supervise.Observer
	if st.HealthEnabled() {
		mon, err := health.New(health.Config{Listen: st.HealthListen, Interval: st.HealthInterval, Mode: health.ModePlain,
			StatusToken: st.StatusToken.Reveal(), Logger: log})
		if err != nil {
			fmt.Fprintf(stderr, "entrypoint: health server (PROSODY_HEALTH_LISTEN=%s): %v\n", st.HealthListen, err)
			return exitConfig
		}
		mon.StageDone("validate-env", time.Since(t0), nil)
		mon.SetStagesDone()
		wg.Go(func() {
			if err := mon.Run(ctx); err != nil {
				log.Error("health server", zap.Error(err))
			}
		})
		obs = mon
	}
	sup, err := supervise.New(supervise.Config{
		Path:        argv[0],
		Args:        argv[1:],
		Env:         env,
		Cred:        cred,
		StopTimeout: st.StopTimeout,
		Restart:     initsteps.RestartPolicy(st, false),
		Signals:     a.signals,
		Logger:      log.Named("supervise"),
		Observer:    obs,
		Stderr:      stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitSoftware
	}
	code := sup.Run(ctx)
	cancel()
	return code
}
