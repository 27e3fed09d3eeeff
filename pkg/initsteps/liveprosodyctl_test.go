package initsteps_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
)

// prosodyctl in the container acts on the running server's config when
// there is one, renders one when there is none, and leaves an explicit
// --config alone.
func TestLiveProsodyctl(t *testing.T) {
	root, env := server(t, nil)
	c, err := initsteps.LiveProsodyctl(env, []string{"--config", "/x.cfg.lua", "check"})
	if err != nil || c.Render || !slices.Equal(c.Args, []string{"--config", "/x.cfg.lua", "check"}) {
		t.Errorf("explicit --config: %+v %v", c, err)
	}
	if c, err = initsteps.LiveProsodyctl(env, []string{"about"}); err != nil || !c.Render {
		t.Errorf("no server's config yet: %+v %v, want Render", c, err)
	}
	live := initsteps.LivePaths(filepath.Join(root, "runtime"), "prosody.cfg.lua")
	if err := os.WriteFile(live.Config, []byte("-- live\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = initsteps.LiveProsodyctl(env, []string{"about"})
	if err != nil || c.Render || !slices.Equal(c.Args, []string{"--config", live.Config, "about"}) || c.Cred == nil {
		t.Fatalf("with a live config: %+v %v", c, err)
	}
	if !slices.Contains(c.Env, "CREDENTIALS_DIRECTORY="+live.Credentials) || slices.ContainsFunc(c.Env, func(kv string) bool { return len(kv) > 8 && kv[:8] == "PROSODY_" }) {
		t.Errorf("env %v: want the live credentials directory and no PROSODY_* variable", c.Env)
	}
}
