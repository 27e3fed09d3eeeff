package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	"PROSODY_UID": true, "PROSODY_GID": true, "PROSODY_NOTIFY": true,
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
	var sockDir string // the notify socket's, removed once the monitor ended
	defer func() {
		if sockDir != "" {
			os.RemoveAll(sockDir)
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var obs supervise.Observer
	if st.Notify && !st.HealthEnabled() {
		fmt.Fprintln(stderr, "entrypoint: warning: PROSODY_NOTIFY=true does nothing with PROSODY_HEALTH_LISTEN=off: no readiness is served")
	}
	if st.HealthEnabled() {
		hc := health.Config{Listen: st.HealthListen, Interval: st.HealthInterval, Mode: health.ModePlain,
			StatusToken: st.StatusToken.Reveal(), Logger: log}
		if st.Notify {
			if sockDir, err = notifyDir(cred); err != nil {
				fmt.Fprintf(stderr, "entrypoint: PROSODY_NOTIFY=true: %v\n", err)
				return exitConfig
			}
			hc.UseNotify, hc.NotifyPath, hc.NotifyAccess = true, filepath.Join(sockDir, "notify.sock"), health.NotifyAll
			hc.NotifyUID, hc.NotifyGID = -1, -1
			if cred != nil {
				hc.NotifyUID, hc.NotifyGID = int(cred.UID), int(cred.GID)
			}
		}
		mon, err := health.New(hc)
		if err != nil {
			fmt.Fprintf(stderr, "entrypoint: health server (PROSODY_HEALTH_LISTEN=%s): %v\n", st.HealthListen, err)
			return exitConfig
		}
		if sock := mon.NotifySocket(); sock != "" {
			env = withEnv(env, "NOTIFY_SOCKET", sock)
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

// notifyDir makes a private directory for the plain child's notify socket,
// searchable by the child's user alone (and root): with the socket's own
// mode 0600, only that user can send READY=1. The caller removes it.
func notifyDir(cred *supervise.Credential) (string, error) {
	dir, err := os.MkdirTemp("", "entrypoint-notify-")
	if err != nil {
		return "", fmt.Errorf("make a directory for the notify socket (in TMPDIR): %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.UID), int(cred.GID)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("give the notify socket's directory %s to uid %d: %w", dir, cred.UID, err)
		}
	}
	return dir, nil
}

// withEnv returns env with name set to value, replacing an earlier value.
func withEnv(env []string, name, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}
