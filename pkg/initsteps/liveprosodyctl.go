package initsteps

import (
	"os"
	"slices"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// liveVars are the settings the prosodyctl wrapper needs to find the running
// server's config; a problem with another variable does not stop it.
var liveVars = []string{"PROSODY_RUNTIME_DIR", "PROSODY_DATA_DIR", "PROSODY_UID", "PROSODY_GID"}

// LiveCommand is how `docker exec CONTAINER prosodyctl ARGS` runs prosodyctl.
type LiveCommand struct {
	Args []string // prosodyctl's arguments
	Env  []string
	Cred *supervise.Credential // who it runs as; nil: the caller
	// Render is true when no server rendered a config yet: the caller runs
	// the config stages first (entrypoint prosodyctl ARGS).
	Render bool
}

// LiveProsodyctl decides how prosodyctl ARGS acts on the running server:
// against the config the server reads (the live file in PROSODY_RUNTIME_DIR,
// with its credentials directory), as the user prosody runs as. With
// --config among args, the caller chose the file: args pass unchanged. The
// error is a configuration error.
func LiveProsodyctl(env, args []string) (*LiveCommand, error) {
	if slices.ContainsFunc(args, func(s string) bool { return s == "--config" || strings.HasPrefix(s, "--config=") }) {
		return &LiveCommand{Args: args, Env: env}, nil
	}
	st, _, _, err := settings.LoadLenient(env, func(name string) bool { return slices.Contains(liveVars, name) })
	if err != nil {
		return nil, configErr(err)
	}
	live := LivePaths(st.RuntimeDir, "prosody.cfg.lua")
	if fi, err := os.Lstat(live.Config); err != nil || !fi.Mode().IsRegular() {
		return &LiveCommand{Render: true}, nil
	}
	cred, err := ChildCredential(st)
	if err != nil {
		return nil, configErr(err)
	}
	s := &State{Env: env, Settings: st, Paths: live, Cred: cred}
	c := &LiveCommand{Args: append([]string{"--config", live.Config}, args...), Env: s.ChildEnv(""), Cred: cred}
	if cred != nil {
		c.Env = append(c.Env, "HOME="+cred.Home)
	}
	return c, nil
}
