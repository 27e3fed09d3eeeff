package initsteps

import "github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"

// IsNoSpace reports whether err, a stage's failure, is a full volume: a file
// the stage had to write (a generated secret or certificate, the rendered
// config, the migration record) did not fit, or the disk quota is used up.
// The error names the volume. Such a failure is never a configuration error
// (IsConfig is false for it), whichever stage it came from: the entrypoint
// gives it its own exit code. The writers leave nothing half-written behind
// (see atomicfile.ErrNoSpace, atomicfile.WriteAll).
func IsNoSpace(err error) bool { return atomicfile.IsNoSpace(err) }
