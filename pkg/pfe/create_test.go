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
	// Without a base, a copy of standard (the design's default); "template" is the
	// tree's empty template.
	if _, err := CreateProfile(builtin, custom, "plain", ""); err != nil {
		t.Errorf("without a base: %v", err)
	}
	if _, err := CreateProfile(builtin, custom, "blank", TemplateBase); err != nil {
		t.Errorf("from the template: %v", err)
	}
	tree, err = Load(builtin, custom)
	if err != nil {
		t.Fatal(err)
	}
	if got := tree.Profile("plain").Features; len(got) != len(std.Features) {
		t.Errorf("without a base the profile has %v, want standard's %v", got, std.Features)
	}
	if got := tree.Profile("blank").Features; len(got) != 1 {
		t.Errorf("from the template the profile has %v, want the template's one feature", got)
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

// CreateFeature writes the feature template under the custom directory with the name
// given, and refuses a feature that exists and a bad name.
func TestCreateFeature(t *testing.T) {
	builtin := filepath.Join("..", "..", "config")
	custom := t.TempDir()
	path, err := CreateFeature(builtin, custom, "collaboration/room-blocklist", "")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(custom, "features", "collaboration", "room-blocklist.json") {
		t.Errorf("wrote %s", path)
	}
	tree, err := Load(builtin, custom)
	if err != nil {
		t.Fatal(err)
	}
	if f := tree.Feature("collaboration/room-blocklist"); f == nil || f.Stability != "experimental" {
		t.Errorf("the new feature is %+v, want the template's", f)
	}
	for name, want := range map[string]error{
		"collaboration/room-blocklist": ErrExists,
		"messaging/core":               ErrExists,
		"nogroup":                      ErrBadName,
		"a/b/c":                        ErrBadName,
		"../x/y":                       ErrBadName,
	} {
		if _, err := CreateFeature(builtin, custom, name, ""); !errors.Is(err, want) {
			t.Errorf("CreateFeature(%q) = %v, want %v", name, err, want)
		}
	}
}

// With a component type, the feature comes from the component template: a Component of
// that type at <name>.<domain>, which a plan then renders for every domain.
func TestCreateFeatureWithComponent(t *testing.T) {
	builtin := filepath.Join("..", "..", "config")
	custom := t.TempDir()
	if _, err := CreateFeature(builtin, custom, "collaboration/rooms2", "muc"); err != nil {
		t.Fatal(err)
	}
	tree, err := Load(builtin, custom)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tree.Plan(Inputs{Profile: "minimal", Environment: "production", Domains: []string{"a.example", "b.example"},
		FeatureList: "+collaboration/rooms2", C2SPort: 5222, S2SPort: 5269, HTTPPort: 5280, HTTPSPort: 5281})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, c := range p.Components {
		if c.Type == "muc" {
			addrs = append(addrs, c.Address)
		}
	}
	if len(addrs) != 2 || addrs[0] != "rooms2.a.example" || addrs[1] != "rooms2.b.example" {
		t.Errorf("components of type muc: %v; want rooms2.<domain> for both domains", addrs)
	}
	if _, err := CreateFeature(builtin, custom, "x/Bad", "muc"); !errors.Is(err, ErrBadName) {
		t.Errorf("bad name with a component: %v", err)
	}
}
