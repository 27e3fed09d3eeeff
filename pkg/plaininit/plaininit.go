// Package plaininit prepares plain init, `entrypoint -- CMD`: every PID-1
// duty for any command, and none of the Prosody stages. It reads the
// settings a supervisor obeys (a bad Prosody variable is only a warning, so
// a `docker run IMAGE sh` to debug is never blocked by a bad PROSODY_DOMAIN),
// decides who the command runs as, and makes the health monitor, with a
// notify socket for the command when PROSODY_NOTIFY asks for one.
package plaininit

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/rungroup"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// Vars are the settings plain init obeys; a problem with one of them stops
// it, a problem with any other is a warning.
var Vars = []string{
	"PROSODY_STOP_TIMEOUT", "PROSODY_RESTART", "PROSODY_RESTART_MAX", "PROSODY_RESTART_WINDOW",
	"PROSODY_RESTART_BACKOFF", "PROSODY_LOG_FORMAT", "PROSODY_LOG_LEVEL", "PROSODY_HEALTH_LISTEN",
	"PROSODY_HEALTH_INTERVAL", "PROSODY_STATUS_TOKEN", "PROSODY_STATUS_TOKEN_FILE",
	"PROSODY_UID", "PROSODY_GID", "PROSODY_NOTIFY",
}

// Setup is what Prepare made for one command.
type Setup struct {
	Settings *settings.Settings
	// Cred is who the command runs as (PROSODY_UID, PROSODY_GID); nil: as
	// the entrypoint.
	Cred *supervise.Credential
	Log  *zap.Logger
	// Monitor serves health; nil with PROSODY_HEALTH_LISTEN=off.
	Monitor *health.Monitor
	// Env is the command's environment: the entrypoint's, with
	// NOTIFY_SOCKET when PROSODY_NOTIFY=true.
	Env []string

	sockDir string
}

// Prepare reads the settings from env (warnings go to stderr), decides the
// command's user and makes the monitor; started is when the entrypoint
// started, for the validate-env stage's duration. Every error is a
// configuration error (initsteps.IsConfig); a *settings.Problems among them
// lists every bad variable. Close removes what Prepare made.
func Prepare(env []string, stderr io.Writer, started time.Time) (*Setup, error) {
	st, warnings, tolerated, err := settings.LoadLenient(env, func(name string) bool { return slices.Contains(Vars, name) })
	if err != nil {
		return nil, initsteps.ConfigError{Err: err}
	}
	for _, p := range tolerated {
		fmt.Fprintf(stderr, "entrypoint: warning (not used by plain init): %s\n", p)
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "entrypoint: warning: %s\n", w)
	}
	// Who the command runs as: gosu's job, done by PID 1 so that it keeps
	// its own privileges for the reaper and the signals.
	cred, err := supervise.RunAs(st.UserSpec, st.GroupSpec)
	if err != nil {
		return nil, initsteps.ConfigError{Err: fmt.Errorf("choose the user the command runs as (PROSODY_UID=%q, PROSODY_GID=%q): %w", st.UserSpec, st.GroupSpec, err)}
	}
	s := &Setup{Settings: st, Cred: cred, Log: initsteps.NewLogger(st.LogFormat, st.LogLevel, stderr), Env: env}
	if st.Notify && !st.HealthEnabled() {
		fmt.Fprintln(stderr, "entrypoint: warning: PROSODY_NOTIFY=true does nothing with PROSODY_HEALTH_LISTEN=off: no readiness is served")
	}
	if !st.HealthEnabled() {
		return s, nil
	}
	hc := health.Config{Listen: st.HealthListen, Interval: st.HealthInterval, Mode: health.ModePlain,
		StatusToken: st.StatusToken.Reveal(), Logger: s.Log}
	if st.Notify {
		if s.sockDir, err = notifyDir(cred); err != nil {
			return nil, initsteps.ConfigError{Err: fmt.Errorf("PROSODY_NOTIFY=true: %w", err)}
		}
		hc.UseNotify, hc.NotifyPath, hc.NotifyAccess = true, filepath.Join(s.sockDir, "notify.sock"), health.NotifyAll
		hc.NotifyUID, hc.NotifyGID = -1, -1
		if cred != nil {
			hc.NotifyUID, hc.NotifyGID = int(cred.UID), int(cred.GID)
		}
	}
	if s.Monitor, err = health.New(hc); err != nil {
		s.Close()
		return nil, initsteps.ConfigError{Err: fmt.Errorf("health server (PROSODY_HEALTH_LISTEN=%s): %w", st.HealthListen, err)}
	}
	if sock := s.Monitor.NotifySocket(); sock != "" {
		s.Env = withEnv(env, "NOTIFY_SOCKET", sock)
	}
	s.Monitor.StageDone("validate-env", time.Since(started), nil)
	s.Monitor.SetStagesDone()
	return s, nil
}

// Supervisor is the supervisor's config for argv under the settings.
func (s *Setup) Supervisor(argv []string, sigs *supervise.Signals, stderr io.Writer) supervise.Config {
	cfg := supervise.Config{
		Path:        argv[0],
		Args:        argv[1:],
		Env:         s.Env,
		Cred:        s.Cred,
		StopTimeout: s.Settings.StopTimeout,
		Restart:     initsteps.RestartPolicy(s.Settings, false),
		Signals:     sigs,
		Logger:      s.Log.Named("supervise"),
		Stderr:      stderr,
	}
	if s.Monitor != nil {
		cfg.Observer = s.Monitor
	}
	return cfg
}

// Run supervises argv (the command and its arguments) under the settings,
// with the health monitor beside it as one group, and returns the command's
// exit code (128+N for a signal, 126/127 when it cannot be executed). A part
// that fails ends the group; that failure is the error, already logged, and
// the code is then the command's if it ran, else 0. Run returns once every
// part has ended; sigs is the entrypoint's registration.
func (s *Setup) Run(ctx context.Context, argv []string, sigs *supervise.Signals, stderr io.Writer) (int, error) {
	code := 0
	var g rungroup.Group
	if s.Monitor != nil {
		g.Go("health", s.Monitor.Run)
	}
	g.Main("command", func(ctx context.Context) error {
		sup, err := supervise.New(s.Supervisor(argv, sigs, stderr))
		if err != nil {
			return err
		}
		code = sup.Run(ctx)
		return nil
	})
	err := g.Run(ctx)
	if err != nil {
		s.Log.Error("entrypoint part failed; stopping", zap.Error(err))
	}
	return code, err
}

// Close removes the notify socket's directory, once the monitor has ended.
func (s *Setup) Close() {
	if s.sockDir != "" {
		os.RemoveAll(s.sockDir)
	}
}

// notifyDir makes a private directory for the command's notify socket,
// searchable by the command's user alone (and root): with the socket's own
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
