//go:build !linux

package migrate

import (
	"context"
	"errors"
)

// run needs prosody-migrator running as the prosody user: Linux only, like
// the container this package serves.
func run(context.Context, Config, string) error {
	return errors.New("storage migration runs on Linux only")
}
