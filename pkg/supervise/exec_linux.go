package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exec runs cmd to completion while Run is reaping and returns its combined
// stdout and stderr and its exit code (128+N for signal N). It exists because
// Run waits for every child with wait4(-1): an os/exec Cmd started meanwhile
// would lose its exit status to the reaper. The reaper hands the status of a
// pid started here back to Exec instead of counting it as an orphan.
//
// When ctx ends, the command's process group is killed and ctx's error is
// returned. ErrNotRunning means Run is not reaping (before it started or after
// it returned): use os/exec then.
func (s *Supervisor) Exec(ctx context.Context, cmd AuxCommand) ([]byte, int, error) {
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
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, 0, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	defer outR.Close()
	stdin, err := os.Open(os.DevNull)
	var inW *os.File
	if err == nil && cmd.Stdin != nil {
		stdin.Close()
		stdin, inW, err = os.Pipe()
	}
	if err != nil {
		outW.Close()
		return nil, 0, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	attr := &os.ProcAttr{
		Dir:   cmd.Dir,
		Env:   env,
		Files: []*os.File{stdin, outW, outW},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	attr.Sys.Credential = cmd.Cred.syscall()
	status := make(chan unix.WaitStatus, 1)
	// As for the main child: no descriptor of the entrypoint leaks into it.
	if err := closeOnExecAbove2(); err != nil {
		outW.Close()
		stdin.Close()
		if inW != nil {
			inW.Close()
		}
		return nil, CodeNotExecutable, fmt.Errorf("run %s: %w", cmd.Path, err)
	}

	s.mu.Lock()
	if !s.reaping {
		s.mu.Unlock()
		outW.Close()
		stdin.Close()
		if inW != nil {
			inW.Close()
		}
		return nil, 0, ErrNotRunning
	}
	// Started under mu: the reaper cannot see the pid before it is registered.
	p, err := os.StartProcess(path, append([]string{cmd.Path}, cmd.Args...), attr)
	if err == nil {
		if s.aux == nil {
			s.aux = map[int]chan unix.WaitStatus{}
		}
		s.aux[p.Pid] = status
	}
	s.mu.Unlock()
	outW.Close()
	stdin.Close()
	if err != nil {
		if inW != nil {
			inW.Close()
		}
		return nil, execCode(err), fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	var wg sync.WaitGroup
	if inW != nil {
		wg.Go(func() {
			_, _ = inW.Write(cmd.Stdin)
			inW.Close()
		})
	}
	var out bytes.Buffer
	wg.Go(func() { _, _ = io.Copy(&out, outR) })

	var ws unix.WaitStatus
	var ctxErr error
	select {
	case ws = <-status:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		_ = unix.Kill(-p.Pid, unix.SIGKILL)
		ws = <-status
	}
	// Something the command left behind in its group may still hold the
	// output pipe open: end it, and stop reading soon whatever happens.
	_ = unix.Kill(-p.Pid, unix.SIGKILL)
	_ = outR.SetReadDeadline(time.Now().Add(time.Second))
	wg.Wait()
	code, _ := exitCode(ws)
	if ctxErr != nil {
		return out.Bytes(), code, fmt.Errorf("run %s: %w", cmd.Path, ctxErr)
	}
	return out.Bytes(), code, nil
}

// env is the command's environment: Env (nil: the entrypoint's), with HOME
// from Cred.Home when there is one.
func (cmd AuxCommand) env() []string {
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	if cmd.Cred != nil && cmd.Cred.Home != "" {
		env = withHome(env, cmd.Cred.Home)
	}
	return env
}

// stopReaping ends Exec's use of the reaper: commands still registered are
// waited for here, so their Exec calls return.
func (s *Supervisor) stopReaping() {
	s.mu.Lock()
	s.reaping = false
	left := s.aux
	s.aux = nil
	s.mu.Unlock()
	for pid, ch := range left {
		// Run is over: a helper still running would hold up the exit past the
		// stop timeout, so it ends now.
		_ = unix.Kill(-pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		ch <- ws
	}
}
