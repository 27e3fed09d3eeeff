package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/server"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// runProsody is the Prosody pipeline (pkg/server); args are extra arguments
// for prosody.
func (a *app) runProsody(args, env []string, stderr io.Writer) int {
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitcode.Software
	}
	return orSoftware(server.Run(context.Background(), server.Config{Env: env, Args: args, Signals: a.signals,
		Stdout: os.Stdout, Stderr: stderr, Fail: func(err error) int { return stageFailure(stderr, err) }}))
}

// orSoftware is the exit code of a run whose part failed (err, already
// logged): the child's code if it ran, else exitcode.Software.
func orSoftware(code int, err error) int {
	if err != nil && code == 0 {
		return exitcode.Software
	}
	return code
}

// stageFailure prints a failed stage the way an operator needs it and
// returns the exit code: 73 for a full volume, 78 for configuration, 1 for
// anything else.
func stageFailure(stderr io.Writer, err error) int {
	var probs *settings.Problems
	if errors.As(err, &probs) {
		printSettingsError(stderr, probs)
		return exitcode.Config
	}
	fmt.Fprintf(stderr, "entrypoint: %v\n", err)
	switch {
	case initsteps.IsNoSpace(err):
		return exitcode.NoSpace
	case initsteps.IsConfig(err):
		return exitcode.Config
	}
	return exitcode.Failed
}
