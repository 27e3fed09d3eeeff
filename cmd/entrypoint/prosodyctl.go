package main

import (
	"context"
	"fmt"
	"io"

	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
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
		return exitcode.Software
	}
	cfg, err := initsteps.Prosodyctl(context.Background(), env, args, stderr)
	if err != nil {
		return stageFailure(stderr, err)
	}
	defer cfg.Logger.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	cfg.Signals = a.signals
	sup, err := supervise.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitcode.Software
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
	err = supervise.ExecReplace("prosodyctl", c.Args, c.Env, c.Cred)
	fmt.Fprintf(stderr, "entrypoint: %v\n", err)
	return supervise.StartFailureCode(err)
}
