package pfe

import (
	"path/filepath"
	"strings"
	"testing"
)

// profiles show prints what the design's profile metadata says: the resources a
// profile needs and the optional features with the variable that switches each on.
func TestProfileTextShowsMetadata(t *testing.T) {
	tree, err := Load(filepath.Join("..", "..", "config"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range tree.Profiles() {
		if tree.Profile(name).ResourceRequirements == nil {
			t.Errorf("profile %s has no resource_requirements", name)
		}
	}
	var b strings.Builder
	tree.WriteProfileText(&b, tree.Profile("standard"))
	for _, want := range []string{
		"users: 10-100",
		"resource requirements: memory 256MB, cpu 1 core, storage 5GB",
		"optional features (off; switch on with):",
		"admin/api                PROSODY_FEATURES_ADMIN_API=true",
		"security/monitoring      PROSODY_FEATURES_SECURITY_MONITORING=true",
		"web/admin                cannot be enabled:",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("profiles show standard lacks %q:\n%s", want, b.String())
		}
	}
}
