package pfe_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// The report maps the shipped legacy lists to features, telling apart what the
// profile already has from what to add.
func TestLegacyReport(t *testing.T) {
	dir := filepath.Join("..", "..", "config")
	tree, err := pfe.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := tree.Plan(pfe.Inputs{Profile: "minimal", Environment: "production", Domains: []string{"example.com"},
		Storage: "sqlite", C2SPort: 5222, S2SPort: 5269, HTTPPort: 5280, HTTPSPort: 5281})
	if err != nil {
		t.Fatal(err)
	}
	report, err := pfe.LegacyReport(dir, "", plan)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"20-mobile.cfg.lua:", "cloud_notify", "-> mobile/push (not enabled)", "PROSODY_FEATURES=+"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// The migration verb writes a profile that has, without legacy mode, what the legacy
// lists of an operator's own modules.d directory load: the features they map to, and
// the modules no feature provides.
func TestMigrateProfile(t *testing.T) {
	dir := filepath.Join("..", "..", "config")
	legacy := t.TempDir()
	list := "modules_enabled = modules_enabled or {}\n-- \"commented\"\ntable.insert(modules_enabled, \"cloud_notify\")\ntable.insert(modules_enabled, \"motd\")\n"
	if err := os.WriteFile(filepath.Join(legacy, "50-mine.cfg.lua"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := pfe.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := tree.Plan(pfe.Inputs{Profile: "minimal", Environment: "production", Domains: []string{"example.com"},
		Storage: "sqlite", C2SPort: 5222, S2SPort: 5269, HTTPPort: 5280, HTTPSPort: 5281})
	if err != nil {
		t.Fatal(err)
	}
	custom := t.TempDir()
	path, m, err := pfe.MigrateProfile(dir, custom, legacy, "migrated", plan)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Report, "50-mine.cfg.lua:") || strings.Contains(m.Report, "commented") {
		t.Errorf("report:\n%s", m.Report)
	}
	tree, err = pfe.Load(dir, custom)
	if err != nil {
		t.Fatalf("the tree does not load with %s: %v", path, err)
	}
	p := tree.Profile("migrated")
	if p == nil || !slices.Contains(p.Features, "mobile/push") || p.Global == nil || !slices.Contains(p.Global.Modules, "motd") {
		t.Fatalf("migrated profile = %+v; want minimal's features + mobile/push, and motd in its own layer", p)
	}
	if _, _, err := pfe.MigrateProfile(dir, custom, legacy, "migrated", plan); !errors.Is(err, pfe.ErrExists) {
		t.Errorf("a second migration to the same name: %v, want ErrExists", err)
	}
	if _, _, err := pfe.MigrateProfile(dir, custom, t.TempDir(), "other", plan); err == nil || !strings.Contains(err.Error(), "no *.cfg.lua module lists") {
		t.Errorf("an empty directory: %v", err)
	}
}
