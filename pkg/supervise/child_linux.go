package supervise

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startError is a failure to start the child, with its shell exit code.
type startError struct {
	code int
	err  error
}

func (e *startError) Error() string  { return e.err.Error() }
func (e *startError) Unwrap() error  { return e.err }
func (e *startError) shellCode() int { return e.code }

// spawn forks and execs the child in a new process group with the
// entrypoint's own fds 0, 1 and 2 and, from 3 on, Config.ExtraFiles' files
// and nothing else.
func (s *Supervisor) spawn() (int, error) {
	path, err := lookPath(s.cfg.Path, s.env)
	if err != nil {
		return 0, err
	}
	if err := closeOnExecAbove2(); err != nil {
		return 0, &startError{code: CodeNotExecutable, err: fmt.Errorf("start %s: %w", path, err)}
	}
	fds, env := []uintptr{0, s.childStdout(), 2}, s.env
	if s.cfg.ExtraFiles != nil {
		files, extra := s.cfg.ExtraFiles()
		for _, f := range files {
			fd, err := rawFD(f)
			if err != nil {
				return 0, &startError{code: CodeNotExecutable, err: fmt.Errorf("start %s: pass descriptor %d: %w", path, len(fds), err)}
			}
			fds = append(fds, fd)
		}
		env = withEnv(env, extra)
	}
	// ForkExec dups each inherited file to its position (clearing
	// close-on-exec there); every other descriptor is close-on-exec by now.
	attr := &syscall.ProcAttr{
		Dir:   s.cfg.Dir,
		Env:   env,
		Files: fds,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	attr.Sys.Credential = s.cfg.Cred.syscall()
	argv := append([]string{s.cfg.Path}, s.cfg.Args...)
	var pid int
	if s.cfg.Umask != nil {
		pid, err = forkWithUmask(path, argv, attr, s.cfg.Umask())
	} else {
		pid, err = forkWithEmptyMask(path, argv, attr)
	}
	if err != nil {
		return 0, &startError{code: execCode(err), err: fmt.Errorf("exec %s: %w", path, err)}
	}
	return pid, nil
}

// execCode maps an exec failure to the shell's exit code.
func execCode(err error) int {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return CodeNotFound
	}
	return CodeNotExecutable
}

// lookPath resolves name like a shell: a name with a slash is used as is,
// any other is searched in the PATH of env (or the entrypoint's PATH).
func lookPath(name string, env []string) (string, error) {
	return lookPathExcept(name, env, nil)
}

// lookPathExcept is lookPath, skipping in the PATH search any file that is
// skip (os.SameFile); nil skips nothing.
func lookPathExcept(name string, env []string, skip os.FileInfo) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathVar, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar, found = v, true
		}
	}
	if !found {
		pathVar = os.Getenv("PATH")
	}
	var denied string
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || (skip != nil && os.SameFile(fi, skip)) {
			continue
		}
		if unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
		if denied == "" {
			denied = p
		}
	}
	if denied != "" {
		return "", &startError{code: CodeNotExecutable, err: fmt.Errorf("exec %s: %w", denied, unix.EACCES)}
	}
	return "", &startError{code: CodeNotFound, err: fmt.Errorf("exec %s: not found in PATH %q", name, pathVar)}
}

// syscall is the credential a child gets, nil for the entrypoint's own.
// NoSetGroups false: setgroups sets exactly c.Groups (none when empty), so no
// supplementary group of the entrypoint reaches the child.
func (c *Credential) syscall() *syscall.Credential {
	if c == nil {
		return nil
	}
	return &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: append([]uint32{}, c.Groups...)}
}

// closeOnExecAbove2 marks every open descriptor above 2 close-on-exec, so
// that even one opened without O_CLOEXEC (by a raw syscall or a library)
// does not leak into the child. Go's own opens already set it.
func closeOnExecAbove2() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list open descriptors in /proc/self/fd: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		// The directory's own descriptor is closed by now: EBADF is fine.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("set close-on-exec on descriptor %d: %w", fd, err)
		}
	}
	return nil
}

// exitCode turns a wait status into the entrypoint's code and the signal name.
func exitCode(ws unix.WaitStatus) (int, string) {
	if ws.Signaled() {
		return 128 + int(ws.Signal()), signalName(ws.Signal())
	}
	return ws.ExitStatus(), ""
}

// groupAlive reports whether process group pgid has any member left.
func groupAlive(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	return unix.Kill(-pgid, 0) != unix.ESRCH
}

// rawFD is f's descriptor, read without File.Fd (which would make a
// non-blocking descriptor blocking).
func rawFD(f *os.File) (uintptr, error) {
	if f == nil {
		return 0, errors.New("nil file")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fd uintptr
	if err := rc.Control(func(d uintptr) { fd = d }); err != nil {
		return 0, err
	}
	return fd, nil
}

// withEnv returns env with each NAME=value of extra replacing NAME's entry.
func withEnv(env, extra []string) []string {
	if len(extra) == 0 {
		return env
	}
	names := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		names[k] = true
	}
	out := make([]string, 0, len(env)+len(extra))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !names[k] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// withHome returns env with HOME set to home.
func withHome(env []string, home string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+home)
}

// forkWithEmptyMask forks and execs from a locked thread whose signal mask
// is empty for the duration: Go's fork hands the forking thread's mask to
// the child, and that mask still holds what the entrypoint inherited.
func forkWithEmptyMask(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty, old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old); err != nil {
		return 0, fmt.Errorf("clear the signal mask before fork: %w", err)
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	// Restoring cannot fail with a valid set; an empty mask would only let
	// this thread take signals too.
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return pid, err
}

// forkWithUmask is forkWithEmptyMask with the file mode creation mask umask
// for the child. The umask belongs to the process (threads share it through
// CLONE_FS), and a thread of its own (unshare(CLONE_FS)) is what Docker's and
// Kubernetes' default seccomp profiles refuse without CAP_SYS_ADMIN, so the
// entrypoint's umask is set for the fork and restored right after it: Go's
// fork returns once the child has exec'd, a fraction of a millisecond. A
// file the entrypoint creates in that moment would get the child's umask,
// which only ever removes permissions (the value is Prosody's `umask`, 027
// by default); the entrypoint sets the mode of what it writes explicitly
// (pkg/atomicfile), so none of its files depends on its umask.
func forkWithUmask(path string, argv []string, attr *syscall.ProcAttr, umask uint32) (int, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := unix.Umask(int(umask & 0o777))
	defer unix.Umask(old)
	return forkWithEmptyMask(path, argv, attr)
}

// umaskMu keeps two forks with a umask (two supervisors) from restoring each
// other's value.
var umaskMu sync.Mutex

// childStdout is the descriptor the child gets as fd 1: the tap's write end
// while Config.Stdout is tapped, else the entrypoint's own stdout.
func (s *Supervisor) childStdout() uintptr {
	if w := s.tapW.Load(); w != nil {
		return w.Fd()
	}
	return 1
}

// startStdoutTap makes a pipe for the children's stdout and drains it into
// Config.Stdout until the returned stop is called (after the last child is
// reaped). stop closes the write end, waits up to a second for the reader
// to drain what is left (an orphan holding the pipe open must not hold up
// the exit), and closes the read end.
func (s *Supervisor) startStdoutTap() (stop func(), err error) {
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create the pipe for the child's stdout: %w", err)
	}
	s.tapW.Store(wr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(s.cfg.Stdout, rd)
	}()
	return func() {
		s.tapW.Store(nil)
		_ = wr.Close()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		_ = rd.Close()
		<-done
	}, nil
}
