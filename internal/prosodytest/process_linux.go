package prosodytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// Options says how to start Prosody.
type Options struct {
	// Dir is the working directory, where Config is written as prosody.cfg.lua. It
	// must exist and be usable by the prosody user (see Dir). Required.
	Dir string
	// Config is the Lua text of prosody.cfg.lua. Required.
	Config string
	// Env is added to the child's environment, which is otherwise only
	// PATH=/usr/sbin:/usr/bin:/sbin:/bin and HOME=Dir; a later entry for the same
	// name wins, so Env may override HOME.
	Env []string
	// StopTimeout is how long cleanup waits after SIGTERM before SIGKILL.
	// Zero means 10s.
	StopTimeout time.Duration
	// StrictStop makes cleanup report a test error when Prosody needed SIGKILL.
	StrictStop bool
}

// Process is a running `prosody -F`, started by Start and stopped at the end of
// the test that started it.
type Process struct {
	// Cmd is the started command; its Wait belongs to Process: do not call it.
	Cmd    *exec.Cmd
	out    Buffer
	done   chan struct{} // closed once Cmd.Wait returned
	waited error         // Cmd.Wait's result, set before done is closed
}

// Start writes opts.Config to opts.Dir/prosody.cfg.lua and runs
// `prosody -F --config <that file>` as the prosody user (Prosody refuses to run as
// root) in its own process group, with stdout and stderr collected for Output. It
// returns once the process has started, not when Prosody is ready: the test waits
// for what it needs (a port, a socket) with a deadline.
//
// At cleanup the process is sent SIGCONT (in case the test stopped it) and
// SIGTERM, then its group SIGKILL after opts.StopTimeout; cleanup returns only
// when it has been waited for, and logs its output when the test failed.
func Start(t testing.TB, opts Options) *Process {
	t.Helper()
	if opts.Dir == "" || opts.Config == "" {
		t.Fatalf("prosodytest.Start: Options.Dir (%q) and Options.Config are required", opts.Dir)
	}
	bin, err := exec.LookPath("prosody")
	if err != nil {
		t.Fatalf("prosody not found (install the Debian package prosody, 13.x from bookworm-backports): %v", err)
	}
	uid, gid := IDs(t)
	cfg := filepath.Join(opts.Dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfg, []byte(opts.Config), 0o644); err != nil {
		t.Fatalf("write prosody config: %v", err)
	}
	p := &Process{done: make(chan struct{})}
	p.Cmd = exec.Command(bin, "-F", "--config", cfg)
	p.Cmd.Dir = opts.Dir
	p.Cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + opts.Dir}, opts.Env...)
	p.Cmd.Stdout, p.Cmd.Stderr = &p.out, &p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Setpgid:    true, // cleanup's SIGKILL reaches anything Prosody forked
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	go func() { // owned by p: cleanup waits for done
		p.waited = p.Cmd.Wait()
		close(p.done)
	}()
	stopAfter := opts.StopTimeout
	if stopAfter <= 0 {
		stopAfter = 10 * time.Second
	}
	t.Cleanup(func() {
		_ = p.Cmd.Process.Signal(syscall.SIGCONT)
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopAfter):
			_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			if opts.StrictStop {
				t.Errorf("prosody did not stop within %s of SIGTERM", stopAfter)
			}
		}
		if t.Failed() {
			t.Logf("prosody output:\n%s", p.Output())
		}
	})
	return p
}

// PID is the process id of Prosody.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Output returns what Prosody wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Exited is closed once Prosody has exited and been waited for.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Signal sends sig to Prosody and fails the test if it cannot be sent.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to prosody (pid %d): %v", sig, p.PID(), err)
	}
}

// WaitExit waits up to 15s for Prosody to exit and returns its exit code in the
// entrypoint's convention (128+N when signal N ended it). It fails the test, with
// Prosody's output, when the process does not exit in time.
func (p *Process) WaitExit(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("prosody did not exit within 15s; output:\n%s", p.Output())
	}
	ws := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Running is a wait condition's guard: nil while Prosody runs, and once it
// has exited an error (final for wait.Until) carrying its exit and output.
func (p *Process) Running() error {
	select {
	case <-p.done:
		return wait.Abort(fmt.Errorf("prosody exited: %v\n%s", p.waited, p.Output()))
	default:
		return nil
	}
}

// Err returns Cmd.Wait's error once Exited is closed, and nil before.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.waited
	default:
		return nil
	}
}
