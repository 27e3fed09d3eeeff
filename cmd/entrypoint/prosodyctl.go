package main

import (
	"context"
	"fmt"
	"io"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// runProsodyctl runs the config stages, then prosodyctl as a child against the
// same rendered config, so `docker run IMAGE prosodyctl check config` checks
// what the server would run. It renders to its own file: a `docker exec` beside
// a running server never rewrites the file that server runs.
func (a *app) runProsodyctl(args, env []string, stderr io.Writer) int {
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitSoftware
	}
	s := initsteps.New(initsteps.Config{Env: env, Stderr: stderr, ConfigName: "prosodyctl.cfg.lua",
		Logger: initsteps.RootLogger(stderr, "warn")})
	stages := append(initsteps.Preamble(), initsteps.ConfigStages()...)
	_, err := initsteps.Run(context.Background(), stages, s, nil, nil)
	defer s.Log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	if err != nil {
		return stageFailure(stderr, err)
	}
	// As prosody from the start: run as root, prosodyctl would load the
	// config (and any Lua in the tree) before switching to the prosody user.
	sup, err := supervise.New(supervise.Config{
		Path:        "prosodyctl",
		Args:        append([]string{"--config", s.Paths.Config}, args[1:]...),
		Env:         s.ChildEnv(""),
		Cred:        s.Cred,
		StopTimeout: s.Settings.StopTimeout,
		Signals:     a.signals,
		Logger:      s.Log.Named("supervise"),
		Stderr:      stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitSoftware
	}
	return sup.Run(context.Background())
}
