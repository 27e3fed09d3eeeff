package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
)

// earlyTermWindow is the target of issue 21: a SIGTERM that reaches the
// entrypoint as PID 1 later than this after the Go runtime first caught it
// is handled (the child is stopped, the exit is 0 or 143), never the
// runtime's exit 2. Package earlysignal is done with SIGTERM about 1 ms after
// exec on an idle machine (bench/run --only earlyterm). The window is
// counted in time the entrypoint could run: on a loaded 2-CPU machine it can
// wait for a CPU for milliseconds in the middle of it, and no program can
// register sooner than it runs, so that wait is taken off.
const earlyTermWindow = 2 * time.Millisecond

// TestPID1EarlyTermConformance: 100 starts of `entrypoint -- sleep 5` as PID 1
// of a new PID namespace, each sent SIGTERM 0-5 ms after the process first
// catches SIGTERM (spread evenly). A TERM inside the window may still meet
// the runtime's default (exit 2); one after it, or after earlysignal's init
// returned, must stop the child and exit 0 (before the child started) or 143
// (the child died of it).
func TestPID1EarlyTermConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the entrypoint runs as PID 1 of a new PID namespace (CI runs the e2e tests as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := []string{entrypointBin, "--", "sleep", "5"}
	env := []string{"PATH=" + os.Getenv("PATH"), "PROSODY_HEALTH_LISTEN=off"}
	const runs = 100
	var early, late []string
	for i := range runs {
		delay := time.Duration(i) * 5 * time.Millisecond / runs
		r, err := entrypointtest.StartEarlyTerm(ctx, argv, env, delay)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, r.Stderr)
		}
		switch {
		case r.Code == 0 || r.Code == 143:
		case r.Code == 2 && r.Sent-r.Starved <= earlyTermWindow:
			early = append(early, fmt.Sprintf("%.2fms(-%.2f)", ms(r.Sent), ms(r.Starved)))
		default:
			late = append(late, fmt.Sprintf("run %d: TERM %.2f ms after the catch (of which the entrypoint waited %.2f ms for a CPU; caught %.2f ms after start): exit %d\n%s",
				i, ms(r.Sent), ms(r.Starved), ms(r.Caught), r.Code, r.Stderr))
		}
	}
	t.Logf("exit 2 within the %s window (TERM sent after the catch, minus time waiting for a CPU): %d of %d runs %v", earlyTermWindow, len(early), runs, early)
	if len(late) > 0 {
		t.Errorf("%d runs ended wrongly (want 0 or 143; exit 2 only within %s):\n%s", len(late), earlyTermWindow, strings.Join(late, "\n"))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
