package pfe

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// CreateProfile copies a profile or the template into the custom directory,
// refuses what exists and bad names without writing, and the tree loads
// with the new profile.
func TestCreateProfile(t *testing.T) {
	builtin := filepath.Join("..", "..", "config")
	custom := t.TempDir()
	path, err := CreateProfile(builtin, custom, "team", "standard")
	if err != nil {
		t.Fatal(err)
	}
	tree, err := Load(builtin, custom)
	if err != nil {
		t.Fatal(err)
	}
	p, std := tree.Profile("team"), tree.Profile("standard")
	if p == nil || path != filepath.Join(custom, "profiles", "team", "profile.json") || len(p.Features) != len(std.Features) {
		t.Fatalf("created %s: %+v", path, p)
	}
	if _, err := CreateProfile(builtin, custom, "blank", ""); err != nil {
		t.Errorf("from the template: %v", err)
	}
	for _, tc := range []struct {
		name, from string
		want       error
	}{
		{"team", "", ErrExists},
		{"standard", "", ErrExists},
		{"Bad Name", "", ErrBadName},
		{"../escape", "", ErrBadName},
	} {
		if _, err := CreateProfile(builtin, custom, tc.name, tc.from); !errors.Is(err, tc.want) {
			t.Errorf("CreateProfile(%q, from %q) = %v, want %v", tc.name, tc.from, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(custom, "profiles", "Bad Name")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused name left a directory: %v", err)
	}
	if _, err := CreateProfile(builtin, "", "other", ""); !errors.Is(err, ErrNoCustomDir) {
		t.Errorf("without a custom dir: %v", err)
	}
}
