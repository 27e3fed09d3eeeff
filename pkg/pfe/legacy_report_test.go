package pfe_test

import (
	"path/filepath"
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
	report, err := pfe.LegacyReport(dir, plan)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"20-mobile.cfg.lua:", "cloud_notify", "-> mobile/push (not enabled)", "PROSODY_FEATURES=+"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}
