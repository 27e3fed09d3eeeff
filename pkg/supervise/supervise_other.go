//go:build !linux

package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
)

// errUnsupported is what every process operation returns off Linux: the
// entrypoint is PID 1 of a Linux container, and the reaper, process groups
// and credentials it relies on are Linux's. These stubs let the packages
// that build on supervise compile (and their pure parts be used and tested)
// elsewhere.
var errUnsupported = fmt.Errorf("supervising processes needs Linux, not %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Signals is the signal registration; off Linux it registers nothing.
type Signals struct{}

// Notify registers nothing off Linux.
func Notify() *Signals { return &Signals{} }

// Adopt adopts nothing off Linux.
func Adopt(_, _ chan os.Signal) *Signals { return &Signals{} }

// Stop does nothing off Linux.
func (s *Signals) Stop() {}

// Supervisor cannot run off Linux: New returns an error.
type Supervisor struct{}

// New returns an error off Linux.
func New(Config) (*Supervisor, error) { return nil, errUnsupported }

// PID is 0: no child runs.
func (s *Supervisor) PID() int { return 0 }

// Signal returns ErrNoChild.
func (s *Supervisor) Signal(syscall.Signal) error { return ErrNoChild }

// Restart returns ErrNotRunning.
func (s *Supervisor) Restart() error { return ErrNotRunning }

// RestartChild returns ErrNotRunning.
func (s *Supervisor) RestartChild(int) error { return ErrNotRunning }

// Run returns CodeNotExecutable at once.
func (s *Supervisor) Run(context.Context) int { return CodeNotExecutable }

// Exec returns ErrNotRunning.
func (s *Supervisor) Exec(context.Context, AuxCommand) ([]byte, int, error) {
	return nil, CodeNotExecutable, ErrNotRunning
}

// LookPath returns an error off Linux.
func LookPath(name string, _ []string) (string, error) {
	return "", fmt.Errorf("%s: %w", name, errUnsupported)
}

// Command returns an error off Linux.
func Command(_ context.Context, cmd AuxCommand, _, _ io.Writer) ([]byte, int, error) {
	return nil, CodeNotExecutable, fmt.Errorf("%s: %w", cmd.Path, errUnsupported)
}

// ExecReplace returns an error off Linux.
func ExecReplace(name string, _, _ []string, _ *Credential) error {
	return fmt.Errorf("%s: %w", name, errUnsupported)
}
