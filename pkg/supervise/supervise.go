package supervise

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Exit codes for a child that could not be started: the shell's two, and
// Config.BeforeStart failing (1, as for a child that failed).
const (
	CodeBeforeStart   = 1
	CodeNotExecutable = 126 // found but cannot be executed (permissions, format, directory)
	CodeNotFound      = 127 // no such file, or not found in PATH
)

// StartFailureCode is the shell's exit code for err, the error of a program
// that could not be started (ExecReplace's, or a start of the supervisor):
// CodeNotFound when the program does not exist (not found in PATH, ENOENT,
// ENOTDIR), CodeNotExecutable for anything else (permissions, format, a
// directory, a failed privilege drop). It reads the error's values, never
// its text.
func StartFailureCode(err error) int {
	var coded interface{ shellCode() int }
	switch {
	case errors.As(err, &coded):
		return coded.shellCode()
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return CodeNotFound
	}
	return CodeNotExecutable
}

// DefaultStopTimeout is the grace period used when Config.StopTimeout is 0.
const DefaultStopTimeout = 10 * time.Second

// Errors of Signal and Restart.
var (
	ErrNoChild    = errors.New("no child is running")
	ErrStopping   = errors.New("supervisor is stopping")
	ErrNotRunning = errors.New("supervisor is not running")
	// ErrNotCurrent: RestartChild was given a pid that is not the running
	// child (it exited, was replaced, or a restart backoff is under way).
	ErrNotCurrent = errors.New("not the running child")
)

// Config configures a Supervisor. Zero values are documented per field.
type Config struct {
	// Path is the program to run; without a slash it is searched in the
	// PATH of Env. Required. It is also the child's argv[0].
	Path string
	// Args are the arguments after argv[0].
	Args []string
	// Env is the child's environment; nil means the entrypoint's own. When
	// Cred has a Home, HOME is set to it.
	Env []string
	// Dir is the child's working directory; "" means the entrypoint's.
	Dir string
	// Cred is who the child runs as; nil means the entrypoint's identity.
	Cred *Credential
	// StopTimeout is the grace between SIGTERM and SIGKILL of the child's
	// group; 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// Restart is the restart policy; the zero value never restarts.
	Restart Policy
	// Signals is the registration made by Notify. Required.
	Signals *Signals
	// Logger logs the lifecycle; nil means no logging.
	Logger *zap.Logger
	// Observer receives lifecycle events; nil means none.
	Observer Observer
	// Intercept, when not nil, sees every received signal except SIGCHLD
	// and SIGPIPE (never forwarded: it is the entrypoint's own broken write)
	// before it is acted on; returning true takes the signal over (it is
	// not forwarded, and SIGTERM/SIGINT then do not stop). It is called
	// from Run's goroutine: it must return quickly and must not call
	// Restart (Signal and PID are fine).
	Intercept func(os.Signal) bool
	// BeforeStart, when not nil, is called before every start of the child:
	// the first, each restart by the policy and each Restart. It runs on
	// Run's goroutine while no child runs, so it may prepare what the child
	// reads (the entrypoint checks the rendered config there); it must return
	// quickly and must not call Restart. An error means the child is not
	// started: it is reported like a child that cannot be executed (on
	// Stderr, and to a waiting Restart) and Run returns CodeBeforeStart.
	BeforeStart func() error
	// ExtraFiles, when not nil, is called on Run's goroutine before every
	// start of the child (after BeforeStart, while no child runs) and
	// returns the open files the child inherits as descriptors 3, 4, … in
	// that order, and environment entries ("NAME=value") that replace the
	// entries of Env with the same name for that start (for socket
	// activation: LISTEN_FDS counting exactly these files). No other
	// descriptor above 2 is inherited. The descriptors are passed as they
	// are: their blocking mode is not changed. The supervisor neither keeps
	// nor closes the files: the caller owns them and keeps them open until
	// its next call returns or Run has returned. It must return quickly and
	// must not call Restart. Nil means fds 0-2 only and Env as it is.
	ExtraFiles func() ([]*os.File, []string)
	// Umask, when not nil, is called on Run's goroutine before every start
	// of the child (after BeforeStart, while no child runs) and returns the
	// file mode creation mask the child starts with (its low nine bits).
	// Only the child gets it: the entrypoint's own umask is not changed,
	// not even for a moment. Nil: the child inherits the entrypoint's umask.
	Umask func() uint32
	// Stderr receives the message when the child cannot be started; nil
	// means os.Stderr.
	Stderr io.Writer
	// Stdout, when not nil, receives everything the child writes to its
	// standard output: the child's fd 1 is then a pipe the supervisor drains
	// into Stdout (the entrypoint tees Prosody's log to its own stdout and
	// keeps its recent error lines). Nil gives the child the entrypoint's own
	// fd 1. Writes to it must not block for long: a full pipe blocks the child.
	Stdout io.Writer
}

// AuxCommand is a short helper command run beside the main child (a config
// check, a migration, a hook) through Exec.
type AuxCommand struct {
	// Path is the program; without a slash it is searched in the PATH of Env.
	Path string
	// Args are the arguments after argv[0].
	Args []string
	// Env is its environment; nil means the entrypoint's own.
	Env []string
	// Dir is its working directory; "" means the entrypoint's.
	Dir string
	// Cred is who it runs as; nil means the entrypoint's identity. When it
	// has a Home, HOME is set to it (as for the main child).
	Cred *Credential
	// Stdin is fed to its standard input; nil means /dev/null.
	Stdin []byte
}
