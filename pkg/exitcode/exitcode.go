// Package exitcode is the one table of the entrypoint's exit codes: every verb,
// the Prosody pipeline and the PFE verbs (pkg/pfecli) return these. A supervised
// child's own code (or 128+N for signal N, 126 and 127 when it cannot be
// executed) passes through as it is and is not listed here.
package exitcode

const (
	// OK: the command did what it was asked.
	OK = 0
	// Failed: the operation failed, or found differences (diff, validate).
	Failed = 1
	// Usage: wrong arguments.
	Usage = 2
	// Software is EX_SOFTWARE: the entrypoint itself failed.
	Software = 70
	// NoSpace is EX_CANTCREAT: a volume is full; nothing half-written is left.
	NoSpace = 73
	// Config is EX_CONFIG: bad environment or configuration.
	Config = 78
)
