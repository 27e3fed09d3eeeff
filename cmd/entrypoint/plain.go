package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/plaininit"
	"github.com/prosody-pfe/prosody-pfe/pkg/rungroup"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// runPlain is plain init for any command: every PID-1 duty, no Prosody
// stages. The health monitor and the supervisor run as one group.
func (a *app) runPlain(argv, env []string, stderr io.Writer) int {
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitSoftware
	}
	p, err := plaininit.Prepare(env, stderr, time.Now())
	if err != nil {
		return stageFailure(stderr, err)
	}
	defer p.Log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	defer p.Close()
	sup, err := supervise.New(p.Supervisor(argv, a.signals, stderr))
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitSoftware
	}
	code := exitSoftware
	var g rungroup.Group
	if p.Monitor != nil {
		g.Go("health", p.Monitor.Run)
	}
	g.Main("command", func(ctx context.Context) error {
		code = sup.Run(ctx)
		return nil
	})
	if err := g.Run(context.Background()); err != nil {
		p.Log.Error("entrypoint part failed; stopping", zap.Error(err))
		if code == 0 {
			code = exitSoftware
		}
	}
	return code
}
