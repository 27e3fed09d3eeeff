package supervise

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helper commands run while the reaper reaps an orphan storm get their own
// exit status and output; os/exec here would fail with "no child processes".
func TestExecWhileReaping(t *testing.T) {
	// The main child spawns orphans continuously so wait4(-1) is busy.
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c",
		"while :; do for i in 1 2 3 4 5; do (sleep 0.01 &) ; done; sleep 0.02; done"}})
	eventually(t, 5*time.Second, "child started", func() bool { return p.sup.PID() != 0 })

	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, code, err := p.sup.Exec(ctx, AuxCommand{Path: "sh", Args: []string{"-c", fmt.Sprintf("echo out-%d; echo err-%d >&2; exit %d", i, i, i%7)}})
			switch {
			case err != nil:
				errs <- fmt.Errorf("exec %d: %w", i, err)
			case code != i%7:
				errs <- fmt.Errorf("exec %d: code %d, want %d", i, code, i%7)
			case !strings.Contains(string(out), fmt.Sprintf("out-%d", i)) || !strings.Contains(string(out), fmt.Sprintf("err-%d", i)):
				errs <- fmt.Errorf("exec %d: output %q", i, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Stdin is fed; a command cut off by its context is killed.
	out, code, err := p.sup.Exec(context.Background(), AuxCommand{Path: "cat", Stdin: []byte("y\n")})
	if err != nil || code != 0 || string(out) != "y\n" {
		t.Errorf("cat with stdin: %q %d %v", out, code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, code, err = p.sup.Exec(ctx, AuxCommand{Path: "sleep", Args: []string{"30"}})
	if !errors.Is(err, context.DeadlineExceeded) || code != 137 || time.Since(start) > 5*time.Second {
		t.Errorf("sleep cut off: code %d err %v after %s", code, err, time.Since(start))
	}
	_, code, err = p.sup.Exec(context.Background(), AuxCommand{Path: "no-such-program-xyz"})
	if err == nil || code != 127 {
		t.Errorf("missing program: code %d err %v, want 127", code, err)
	}
}

// Before Run reaps, Exec refuses so the caller uses os/exec.
func TestExecBeforeRun(t *testing.T) {
	sigs := Notify()
	defer sigs.Stop()
	sup, err := New(Config{Path: "true", Signals: sigs})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sup.Exec(context.Background(), AuxCommand{Path: "true"}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Exec before Run: %v, want ErrNotRunning", err)
	}
}

// A command that leaves a process behind holding its output open does not
// hang Exec: the leftover in its group is killed once the command exits.
func TestExecDoesNotWaitForLeftovers(t *testing.T) {
	p := startInProcess(t, Config{Path: "sleep", Args: []string{"30"}})
	eventually(t, 5*time.Second, "child started", func() bool { return p.sup.PID() != 0 })
	start := time.Now()
	out, code, err := p.sup.Exec(context.Background(), AuxCommand{Path: "sh", Args: []string{"-c", "sleep 60 & echo started"}})
	if err != nil || code != 0 || !strings.Contains(string(out), "started") {
		t.Fatalf("Exec = %q %d %v", out, code, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Exec took %s: it waited for the leftover sleep", d)
	}
}
