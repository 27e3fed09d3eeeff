package luacfg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// CheckOptions configures Check. The zero value runs luac5.4 and, when it is on PATH,
// prosodyctl, each with a 30 s limit.
type CheckOptions struct {
	// Luac is the Lua compiler used for the syntax check; "" means "luac5.4" from PATH.
	Luac string
	// Prosodyctl is the prosodyctl binary; "" means "prosodyctl" from PATH, skipped when
	// not installed. SkipProsodyctl skips it always.
	Prosodyctl     string
	SkipProsodyctl bool
	// Env is the environment of the checkers (for example CREDENTIALS_DIRECTORY); nil
	// means the current process's environment.
	Env []string
	// Timeout bounds each command; 0 means 30 s.
	Timeout time.Duration
	// Cred is who the checkers run as: the user Prosody runs as, so that Lua
	// in the file (a `$lua` value, a legacy include) runs with Prosody's
	// rights, never root's, and the file is proven readable by Prosody. Nil
	// means the entrypoint's own identity, and prosodyctl gets --root (as root
	// it would otherwise switch to the prosody user itself, after loading the
	// file as root).
	Cred *supervise.Credential
	// Run, when set, runs each checker and returns its combined output and exit
	// code; err only when it could not run. Nil means supervise.Command. The
	// entrypoint sets it while its reaper runs (supervise.Supervisor.Exec), where
	// a direct wait would lose the exit status to wait4(-1).
	Run RunFunc
}

// luac is the Lua compiler Check runs: opt.Luac, or luac5.4 from PATH.
func (opt CheckOptions) luac() string {
	if opt.Luac == "" {
		return "luac5.4"
	}
	return opt.Luac
}

// prosodyctl is the prosodyctl Check runs: opt.Prosodyctl, or prosodyctl from PATH.
func (opt CheckOptions) prosodyctl() string {
	if opt.Prosodyctl == "" {
		return "prosodyctl"
	}
	return opt.Prosodyctl
}

// RunFunc runs cmd to completion and returns its combined output and exit
// code; err only when it could not run (supervise.Supervisor.Exec is one).
type RunFunc func(ctx context.Context, cmd supervise.AuxCommand) (out []byte, code int, err error)

// Check validates the rendered file at path, which must end in ".lua", running both
// checkers as opt.Cred. First `luac -p` (syntax; the error carries file:line), then
// `prosodyctl --config path check config` when prosodyctl exists: its exit 1 rejects the
// file with its output, exit 2 returns its output lines as warnings, 0 passes. An error
// also means a checker could not run (missing luac, timeout, a file opt.Cred cannot
// read); the message says which.
func Check(ctx context.Context, path string, opt CheckOptions) (warnings []string, err error) {
	if !strings.HasSuffix(path, ".lua") {
		return nil, fmt.Errorf("check %s: the file name must end in .lua (prosodyctl refuses others)", path)
	}
	timeout := opt.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	luac := opt.luac()
	luacPath, err := supervise.LookPath(luac, opt.Env)
	if err != nil {
		return nil, fmt.Errorf("check %s: %s not found (install the Debian package lua5.4): %w", path, luac, err)
	}
	out, code, err := opt.run(ctx, timeout, luacPath, "-p", path)
	if err != nil {
		return nil, fmt.Errorf("check %s: run %s: %w", path, luac, err)
	}
	if code != 0 {
		msg := strings.TrimSpace(out)
		msg = strings.TrimPrefix(msg, luacPath+": ")
		msg = strings.TrimPrefix(msg, luac+": ")
		return nil, fmt.Errorf("check %s: lua syntax error: %s", path, msg)
	}
	if opt.SkipProsodyctl {
		return nil, nil
	}
	ctl := opt.prosodyctl()
	ctlPath, err := supervise.LookPath(ctl, opt.Env)
	if err != nil {
		if opt.Prosodyctl != "" {
			return nil, fmt.Errorf("check %s: %s not found: %w", path, ctl, err)
		}
		return nil, nil // Prosody not installed here: the syntax check is all we can do
	}
	args := []string{"--config", path, "check", "config"}
	if opt.Cred == nil {
		// As root, prosodyctl would otherwise switch to the prosody user (after
		// loading the file) and fail on files only root can read.
		args = append([]string{"--root"}, args...)
	}
	out, code, err = opt.run(ctx, timeout, ctlPath, args...)
	if err != nil {
		return nil, fmt.Errorf("check %s: run prosodyctl check config: %w", path, err)
	}
	switch code {
	case 0:
		return nil, nil
	case 2:
		return outputLines(out), nil
	default:
		return nil, fmt.Errorf("check %s: prosodyctl check config rejected it (exit %d): %s", path, code, strings.Join(outputLines(out), " | "))
	}
}

// run runs a command and returns its combined output and exit code; err is set only when it
// could not run or timed out.
func (opt CheckOptions) run(ctx context.Context, timeout time.Duration, name string, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := supervise.AuxCommand{Path: name, Args: args, Env: opt.Env, Cred: opt.Cred}
	run := opt.Run
	if run == nil {
		run = func(ctx context.Context, cmd supervise.AuxCommand) ([]byte, int, error) {
			return supervise.Command(ctx, cmd, nil, nil)
		}
	}
	out, code, err := run(ctx, cmd)
	if ctx.Err() != nil {
		return string(out), -1, fmt.Errorf("%s: %w", name, ctx.Err())
	}
	return string(out), code, err
}

// outputLines returns the non-empty lines of out, trimmed, without ANSI colour codes.
func outputLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = stripANSI(strings.TrimSpace(l))
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
