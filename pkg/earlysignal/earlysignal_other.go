//go:build !linux

package earlysignal

import "os"

// Signals is empty off Linux: the entrypoint supervises only on Linux, and
// the package registers nothing elsewhere.
func Signals() []os.Signal { return nil }

// Nothing to wait for in Take.
func init() { close(restDone) }
