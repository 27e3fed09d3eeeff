//go:build !linux

package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// Listener is the notify socket; off Linux there is none (the sender's
// credentials it relies on are Linux's SO_PASSCRED).
type Listener struct{}

// Listen returns an error off Linux.
func Listen(path string, uid, gid int) (*Listener, error) {
	return nil, fmt.Errorf("listen notify socket %q: needs Linux, not %s: %w", path, runtime.GOOS, errors.ErrUnsupported)
}

// Path is "".
func (l *Listener) Path() string { return "" }

// Run returns at once.
func (l *Listener) Run(context.Context, func(Message)) error { return errors.ErrUnsupported }

// Close does nothing.
func (l *Listener) Close() error { return nil }
