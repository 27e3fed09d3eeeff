package initsteps

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/listeners"
)

// Listeners binds the sockets Prosody's network services listen on (see
// package listeners), as the entrypoint (root) and before Prosody starts: a
// port in use, or one the entrypoint may not bind, is a configuration error
// (exit 78) found here rather than logged by a Prosody that keeps running
// without it. With PROSODY_SOCKET_ACTIVATION=false the sockets are only
// tried and closed again, and Prosody binds its own.
var Listeners = Stage[*State]{Name: "listeners", Run: stageListeners}

func stageListeners(_ context.Context, s *State) error {
	specs := listeners.Plan(s.Plan)
	set, skipped, err := listeners.Open(specs)
	if err != nil {
		var be *listeners.BindError
		if errors.As(err, &be) {
			return configErr(err)
		}
		return err
	}
	for _, sk := range skipped {
		s.Log.Warn("listener left to prosody: its address does not exist here",
			zap.String("listener", sk.Spec.String()), zap.Error(sk.Err))
	}
	if !s.Settings.SocketActivation {
		return set.Close()
	}
	s.Listeners = set
	s.Log.Info("listeners held for prosody", zap.Stringers("listeners", set.Specs()))
	return nil
}
