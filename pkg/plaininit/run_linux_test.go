package plaininit

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// Run supervises the command and returns its own exit code, the shell's
// 127 for a command that does not exist, and ends within its context.
func TestRunReturnsTheCommandsCode(t *testing.T) {
	sigs := supervise.Notify()
	defer sigs.Stop()
	for _, c := range []struct {
		argv []string
		want int
	}{
		{[]string{"sh", "-c", "exit 7"}, 7},
		{[]string{"true"}, 0},
		{[]string{"no-such-command-for-plaininit"}, supervise.CodeNotFound},
	} {
		var stderr bytes.Buffer
		p, err := Prepare([]string{"PROSODY_HEALTH_LISTEN=off", "PROSODY_RESTART=never"}, &stderr, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		code, err := p.Run(ctx, c.argv, sigs, &stderr)
		cancel()
		p.Close()
		if code != c.want || err != nil {
			t.Errorf("Run(%q) = %d, %v; want %d, nil\n%s", c.argv, code, err, c.want, stderr.String())
		}
	}
}

// With health on, the monitor runs beside the command and ends with it: Run
// returns once the command has ended.
func TestRunEndsTheMonitorWithTheCommand(t *testing.T) {
	sigs := supervise.Notify()
	defer sigs.Stop()
	var stderr bytes.Buffer
	ports, err := entrypointtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	listen := "PROSODY_HEALTH_LISTEN=127.0.0.1:" + strconv.Itoa(ports[0])
	p, err := Prepare([]string{listen, "PROSODY_RESTART=never"}, &stderr, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Monitor == nil {
		t.Fatal("no monitor with PROSODY_HEALTH_LISTEN set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, err := p.Run(ctx, []string{"sh", "-c", "exit 5"}, sigs, &stderr)
	if code != 5 || err != nil || ctx.Err() != nil {
		t.Errorf("Run = %d, %v (context %v); want 5, nil, before the deadline\n%s", code, err, ctx.Err(), stderr.String())
	}
}
