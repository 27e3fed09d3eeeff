package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// LookPath resolves name as Exec and Command do: a name with a slash is used
// as is, any other is searched in the PATH of env (nil: the entrypoint's).
// The error says whether it was not found or not executable.
func LookPath(name string, env []string) (string, error) {
	return lookPath(name, env)
}

// Command runs cmd to completion when no Supervisor is reaping: the init
// stages before the child starts, the verbs, the hooks. It is the one place
// outside the supervisor that starts a process, with the same rules as Exec:
// its own process group, killed whole when ctx ends (ctx's error is then
// returned); the credential drops every supplementary group; exit code
// 128+N when signal N ended it, CodeNotFound or CodeNotExecutable when it
// could not start (err is then set too). stdout and stderr, when not nil,
// receive its output as it comes and the returned bytes are nil; when both
// are nil, its combined output is returned.
//
// While a Supervisor reaps, use its Exec: Command's wait would race the
// reaper's wait4(-1) for the exit status.
func Command(ctx context.Context, cmd AuxCommand, stdout, stderr io.Writer) ([]byte, int, error) {
	env := cmd.env()
	path, err := lookPath(cmd.Path, env)
	if err != nil {
		code := CodeNotExecutable
		var se *startError
		if errors.As(err, &se) {
			code = se.code
		}
		return nil, code, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	c := exec.CommandContext(ctx, path, cmd.Args...)
	c.Args[0] = cmd.Path
	c.Env, c.Dir = env, cmd.Dir
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cmd.Cred.syscall()}
	c.Cancel = func() error { return unix.Kill(-c.Process.Pid, unix.SIGKILL) }
	c.WaitDelay = time.Second // a grandchild holding the output pipe cannot hang us
	if cmd.Stdin != nil {
		c.Stdin = bytes.NewReader(cmd.Stdin)
	}
	var out bytes.Buffer
	if stdout == nil && stderr == nil {
		c.Stdout, c.Stderr = &out, &out
	} else {
		c.Stdout, c.Stderr = orDiscard(stdout), orDiscard(stderr)
	}
	err = c.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return out.Bytes(), waitCode(c.ProcessState), fmt.Errorf("run %s: %w", cmd.Path, ctx.Err())
	case err == nil:
		return out.Bytes(), 0, nil
	case errors.As(err, &ee):
		return out.Bytes(), waitCode(ee.ProcessState), nil
	default:
		return out.Bytes(), execCode(err), fmt.Errorf("run %s: %w", cmd.Path, err)
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// waitCode is the exit code of a finished process, 128+N for signal N; -1
// when it never ran.
func waitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	code, _ := exitCode(unix.WaitStatus(ps.Sys().(syscall.WaitStatus)))
	return code
}
