//go:build !linux

package listeners

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errUnsupported: the entrypoint holds Prosody's sockets only on Linux.
var errUnsupported = fmt.Errorf("holding listeners needs Linux, not %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Set cannot be opened off Linux.
type Set struct{}

// Skipped is a spec left to Prosody, and why.
type Skipped struct {
	Spec Spec
	Err  error
}

// Open returns an error off Linux.
func Open(specs []Spec) (*Set, []Skipped, error) { return nil, nil, errUnsupported }

// Files returns nothing off Linux.
func (s *Set) Files() ([]*os.File, []string) { return nil, nil }

// Prepare returns an error off Linux.
func (s *Set) Prepare(specs []Spec) ([]Skipped, error) { return nil, errUnsupported }

// Discard does nothing off Linux.
func (s *Set) Discard() {}

// Specs returns nothing off Linux.
func (s *Set) Specs() []Spec { return nil }

// Queued returns nothing off Linux.
func (s *Set) Queued() []int { return nil }

// Close does nothing off Linux.
func (s *Set) Close() error { return nil }

func hint(e *BindError) string { return "check the port and interface settings" }
