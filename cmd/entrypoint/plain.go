package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
	"github.com/prosody-pfe/prosody-pfe/pkg/plaininit"
)

// runPlain is plain init for any command: every PID-1 duty, no Prosody
// stages (pkg/plaininit).
func (a *app) runPlain(argv, env []string, stderr io.Writer) int {
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitcode.Software
	}
	p, err := plaininit.Prepare(env, stderr, time.Now())
	if err != nil {
		return stageFailure(stderr, err)
	}
	defer p.Log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	defer p.Close()
	return orSoftware(p.Run(context.Background(), argv, a.signals, stderr))
}
