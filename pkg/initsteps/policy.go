package initsteps

import (
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// RestartPolicy is the supervisor's restart policy from PROSODY_RESTART*:
// for prosody (the pipeline) or for a plain-init child. PROSODY_RESTART_MAX=0
// means no restarts, not the supervisor's default.
func RestartPolicy(st *settings.Settings, prosody bool) supervise.Policy {
	mode := supervise.RestartMode(st.RestartPolicy(prosody))
	if st.RestartMax == 0 {
		mode = supervise.ModeNever // "0 restarts allowed", not the package default
	}
	return supervise.Policy{
		Mode:    mode,
		Max:     st.RestartMax,
		Window:  st.RestartWindow,
		Backoff: st.RestartBackoff,
	}
}
