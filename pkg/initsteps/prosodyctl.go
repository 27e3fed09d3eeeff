package initsteps

import (
	"context"
	"io"

	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// ProsodyctlConfigName is the file `entrypoint prosodyctl` renders into in
// PROSODY_RUNTIME_DIR: its own, so that a `docker exec` beside a running
// server never rewrites the file that server runs.
const ProsodyctlConfigName = "prosodyctl.cfg.lua"

// Prosodyctl runs the preamble and the config stages from env (the logger at
// level warn, reports to stderr), then returns the supervisor's config that
// runs prosodyctl args against the config they rendered, as the user
// prosody runs as: run as root, prosodyctl would load the config (and any
// Lua in the tree) before switching users. The caller sets Signals and
// syncs the returned config's Logger at exit. A failed stage is the error,
// as Run returns it.
func Prosodyctl(ctx context.Context, env, args []string, stderr io.Writer) (supervise.Config, error) {
	s := New(Config{Env: env, Stderr: stderr, ConfigName: ProsodyctlConfigName, Logger: RootLogger(stderr, "warn")})
	_, err := Run(ctx, Preamble(), s, nil, nil)
	if err == nil {
		_, err = Run(ctx, ConfigStages(s.Settings), s, nil, nil)
	}
	if err != nil {
		s.Log.Sync() //nolint:errcheck // nothing to do about a failed flush
		return supervise.Config{}, err
	}
	return supervise.Config{
		Path:        "prosodyctl",
		Args:        append([]string{"--config", s.Paths.Config}, args...),
		Env:         s.ChildEnv(""),
		Cred:        s.Cred,
		StopTimeout: s.Settings.StopTimeout,
		Logger:      s.Log.Named("supervise"),
		Stderr:      stderr,
	}, nil
}
