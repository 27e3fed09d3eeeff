package entrypointtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EarlyTerm is one run of the early-SIGTERM conformance case: an init started
// as PID 1 of a new PID namespace gets SIGTERM a chosen delay after it first
// catches or blocks SIGTERM (as /proc/PID/status shows).
type EarlyTerm struct {
	// Caught is the time from just before fork+exec to the first look at
	// /proc/PID/status that showed SIGTERM caught or blocked. Looks are back
	// to back (tens of microseconds apart), but the first one comes only once
	// exec returned to the parent: a small Caught means "already at exec".
	Caught time.Duration
	// Sent is the time from that look to the kill(2) of SIGTERM: the delay
	// asked for, or a little more.
	Sent time.Duration
	// Starved is how long the init's threads waited for a CPU between the
	// look that saw the catch and the kill (waits that ended by then): on a
	// busy machine, a part of Sent the init could not use.
	Starved time.Duration
	// Code is the exit status, or 128+N when signal N ended the init.
	Code int
	// Stderr is what the init wrote to standard error.
	Stderr string
}

// StartEarlyTerm runs argv (an init and its arguments) with env as PID 1 of
// a new PID namespace (needs root), sends it SIGTERM delay after it first
// catches or blocks SIGTERM, and waits for it to exit. The wait for the catch
// is a busy loop, so it sees the moment within tens of microseconds; the init
// is killed when ctx ends first.
func StartEarlyTerm(ctx context.Context, argv, env []string, delay time.Duration) (EarlyTerm, error) {
	var r EarlyTerm
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start %s as PID 1 of a new PID namespace (needs root): %w", argv[0], err)
	}
	status := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status"
	var caught time.Time
	for caught.IsZero() {
		b, err := os.ReadFile(status)
		if err != nil {
			break // exited already; Wait tells how
		}
		if catchesOrBlocks(b, syscall.SIGTERM) {
			caught = time.Now()
			r.Starved = -runDelay(cmd.Process.Pid)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if !caught.IsZero() {
		r.Caught = caught.Sub(t0)
		// Sleep most of the delay, so this process leaves the CPUs to the
		// init, and spin the last stretch for precision.
		const spin = 200 * time.Microsecond
		if delay > spin {
			time.Sleep(delay - spin - time.Since(caught))
		}
		for time.Since(caught) < delay {
		}
		r.Starved = max(0, r.Starved+runDelay(cmd.Process.Pid))
		r.Sent = time.Since(caught)
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	err := cmd.Wait()
	r.Stderr = stderr.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Code = 128 + int(ws.Signal())
		}
	default:
		return r, err
	}
	if caught.IsZero() {
		return r, fmt.Errorf("%s exited (code %d) before it caught SIGTERM", argv[0], r.Code)
	}
	return r, ctx.Err()
}

// catchesOrBlocks reports whether a /proc/PID/status text shows sig in
// SigCgt or SigBlk.
func catchesOrBlocks(status []byte, sig syscall.Signal) bool {
	for _, line := range strings.Split(string(status), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "SigCgt" && name != "SigBlk") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err == nil && mask&(1<<(uint(sig)-1)) != 0 {
			return true
		}
	}
	return false
}

// runDelay is how long pid's threads have waited on a run queue for a CPU so
// far: the second field of each /proc/PID/task/TID/schedstat, summed. The
// kernel adds a wait when the thread gets its CPU, so a wait going on now is
// not counted yet.
func runDelay(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}
