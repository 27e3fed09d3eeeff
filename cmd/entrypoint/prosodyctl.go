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
	_, err := initsteps.Run(context.Background(), initsteps.Preamble(), s, nil, nil)
	if err == nil {
		_, err = initsteps.Run(context.Background(), initsteps.ConfigStages(s.Settings), s, nil, nil)
	}
	defer s.Log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	if err != nil {
		return stageFailure(stderr, err)
	}
	// As prosody from the start: run as root, prosodyctl would load the
	// config (and any Lua in the tree) before switching to the prosody user.
	sup, err := supervise.New(supervise.Config{
		Path:        "prosodyctl",
		Args:        append([]string{"--config", s.Paths.Config}, args...),
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

// runLiveProsodyctl is prosodyctl as `docker exec CONTAINER prosodyctl ARGS`
// runs it: the image links /usr/local/bin/prosodyctl, first in PATH, to the
// entrypoint. It replaces itself with the real prosodyctl against the running
// server's config (initsteps.LiveProsodyctl), keeping the terminal for
// `prosodyctl shell`; before any server rendered a config, it is
// `entrypoint prosodyctl ARGS`.
func (a *app) runLiveProsodyctl(args, env []string, stderr io.Writer) int {
	c, err := initsteps.LiveProsodyctl(env, args)
	switch {
	case err != nil:
		return stageFailure(stderr, err)
	case c.Render:
		fmt.Fprintln(stderr, "entrypoint: no running server's config; rendering one from the environment")
		return a.runProsodyctl(args, env, stderr)
	}
	return execFailure(stderr, supervise.ExecReplace("prosodyctl", c.Args, c.Env, c.Cred))
}

// execFailure reports a program that could not replace the entrypoint: 127
// when it is not found, 126 otherwise (a shell's codes, as tini gives them).
func execFailure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "entrypoint: %v\n", err)
	return supervise.StartFailureCode(err)
}
