package initsteps_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// verify asks about the plan the server runs: with legacy mode and the operator's own
// PROSODY_LEGACY_DIR, that includes its lists, not the shipped ones.
func TestServedPlanReadsTheOwnLegacyDir(t *testing.T) {
	legacy := t.TempDir()
	list := "modules_enabled:append {\n\t\"carbons\";\n}\n"
	if err := os.WriteFile(filepath.Join(legacy, "10-ours.cfg.lua"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	_, env := server(t, map[string]string{"PROSODY_PROFILE": "minimal", "PROSODY_LEGACY_MODE": "true", "PROSODY_LEGACY_DIR": legacy})
	st, _, err := settings.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := initsteps.ServedPlan(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	var lists []string
	for _, l := range plan.Legacy {
		lists = append(lists, l.Source)
	}
	if want := filepath.Join(legacy, "10-ours.cfg.lua"); !slices.Equal(lists, []string{want}) {
		t.Errorf("the plan verify asks about should include our list %s alone, has %q", want, lists)
	}
}
