package initsteps_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// `entrypoint prosodyctl ARGS` renders into its own file, never the one a
// running server reads, and runs prosodyctl as prosody against that file
// with the arguments after --config.
func TestProsodyctlRendersItsOwnFileAndRunsAsProsody(t *testing.T) {
	root, env := server(t, nil)
	live := filepath.Join(root, "runtime", "prosody.cfg.lua")
	if err := os.WriteFile(live, []byte("-- the running server's\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cfg, err := initsteps.Prosodyctl(context.Background(), env, []string{"check", "config"}, &stderr)
	if err != nil {
		t.Fatalf("Prosodyctl: %v\n%s", err, stderr.String())
	}
	own := filepath.Join(root, "runtime", initsteps.ProsodyctlConfigName)
	want := []string{"--config", own, "check", "config"}
	if cfg.Path != "prosodyctl" || !slices.Equal(cfg.Args, want) {
		t.Errorf("runs %s %q, want prosodyctl %q", cfg.Path, cfg.Args, want)
	}
	if b, err := os.ReadFile(live); err != nil || string(b) != "-- the running server's\n" {
		t.Errorf("the running server's file changed: %q, %v", b, err)
	}
	if b, err := os.ReadFile(own); err != nil || !strings.Contains(string(b), "VirtualHost") {
		t.Errorf("%s is not a rendered config: %v\n%s", own, err, b)
	}
	uid, gid := prosodytest.IDs(t)
	if cfg.Cred == nil || int(cfg.Cred.UID) != uid || int(cfg.Cred.GID) != gid {
		t.Errorf("prosodyctl runs as %+v, want prosody (%d:%d)", cfg.Cred, uid, gid)
	}
	if slices.ContainsFunc(cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, "PROSODY_") }) {
		t.Errorf("prosodyctl's environment holds the entrypoint's PROSODY_* variables: %q", cfg.Env)
	}
}

// A bad environment stops `entrypoint prosodyctl` before any stage writes,
// with every problem named.
func TestProsodyctlBadEnvironmentIsTheError(t *testing.T) {
	root, env := server(t, map[string]string{"PROSODY_C2S_PORT": "many"})
	_, err := initsteps.Prosodyctl(context.Background(), env, []string{"check"}, &bytes.Buffer{})
	var probs *settings.Problems
	if !errors.As(err, &probs) || !strings.Contains(err.Error(), "PROSODY_C2S_PORT") {
		t.Fatalf("error %v, want *settings.Problems naming PROSODY_C2S_PORT", err)
	}
	if _, err := os.Stat(filepath.Join(root, "runtime", initsteps.ProsodyctlConfigName)); err == nil {
		t.Error("a config was rendered from a bad environment")
	}
}
