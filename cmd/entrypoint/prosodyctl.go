package main

import (
	"context"
	"fmt"
	"io"

	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// runProsodyctl runs the config stages, then prosodyctl as a child against the
// same rendered config, so `docker run IMAGE prosodyctl check config` checks
// what the server would run. It renders to its own file: a `docker exec` beside
// a running server never rewrites the file that server runs.
func (a *app) runProsodyctl(args, env []string, stdout, stderr io.Writer) int {
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitConfig
	}
	log := newLogger(st.LogFormat, "warn", stderr)
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitSoftware
	}
	s, err := newState(st, log, stderr, "prosodyctl.cfg.lua")
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitConfig
	}
	if err := stageDirectories(context.Background(), s); err != nil {
		fmt.Fprintf(stderr, "entrypoint: stage directories: %v\n", err)
		return exitConfig
	}
	if code, ok := runStages(context.Background(), configStages(), s, nil, stderr); !ok {
		return code
	}
	// prosodyctl switches to the prosody user itself when started as root.
	sup, err := supervise.New(supervise.Config{
		Path:        "prosodyctl",
		Args:        append([]string{"--config", s.configPath}, args[1:]...),
		Env:         childEnv(env, s, ""),
		StopTimeout: st.StopTimeout,
		Signals:     a.signals,
		Logger:      log.Named("supervise"),
		Stderr:      stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitSoftware
	}
	return sup.Run(context.Background())
}
