//go:build !linux

package initsteps

import "os"

// isTerminal is false off Linux: the logger defaults to JSON there.
func isTerminal(*os.File) bool { return false }
