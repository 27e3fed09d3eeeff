package pfe_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCollectsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "core/global.json"), `{"global": {"modules": ["mod_roster"], "setings": {}}}`)
	writeFile(t, filepath.Join(dir, "profiles/a/profile.json"), `{"name": "b", "features": []}`)
	writeFile(t, filepath.Join(dir, "profiles/c/profile.json"), `{"name": "c", "features": ["x/one"]}`)
	writeFile(t, filepath.Join(dir, "features/x/one.json"), `{"name": "x/one", "requires": ["x/tow"], "global": {"settings": {"a": {"$var": "nope"}, "b-c": 1, "d": {"$credential": "x", "y": 1}}}}`)
	writeFile(t, filepath.Join(dir, "features/x/two.json"), `{"name": "x/two", "stability": "unsupported"}`)
	writeFile(t, filepath.Join(dir, "features/x/three.json"), `{"name": "x/three", "toggles": ["PROSODY_FEATURES_X_ONE"], "when": [{"if": {"colour": "red"}}]}`)
	writeFile(t, filepath.Join(dir, "environments/e.json"), `{"name": "e", "log_level": "loud"}`+"\n{}")
	_, err := pfe.Load(dir, filepath.Join(dir, "missing-custom"))
	if err == nil {
		t.Fatal("Load accepted a broken tree")
	}
	msg := err.Error()
	for _, want := range []string{
		`core/global.json: key "global.setings": unknown field "setings" (did you mean settings?); accepted here: disable_modules, modules, remove_modules, settings`,
		`profiles/a/profile.json: key "name" is "b" but the directory is "a"`,
		`features/x/one.json: key "global.settings.a": $var "nope" is not a plan input`,
		`key "global.settings.b-c": option name "b-c" is not a Lua identifier`,
		`key "global.settings.d": an object with "$credential" must have no other keys`,
		`features/x/two.json: key "unsupported" needs "reason" and "instead"`,
		`features/x/three.json: key "when[0].if.colour": unknown plan input "colour"`,
		`environments/e.json: unexpected data after the JSON value`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "mod_roster") && !strings.Contains(msg, `without the mod_ prefix ("roster")`) {
		t.Errorf("mod_ prefix not explained:\n%s", msg)
	}
}

func TestLoadReferencesAndToggleClash(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "profiles/c/profile.json"), `{"name": "c", "features": ["x/onee"]}`)
	writeFile(t, filepath.Join(dir, "features/x/one.json"), `{"name": "x/one", "requires": ["x/tow"], "conflicts": ["y/z"]}`)
	writeFile(t, filepath.Join(dir, "features/x/two.json"), `{"name": "x/two", "toggles": ["PROSODY_FEATURES_X_ONE"]}`)
	_, err := pfe.Load(dir, "")
	if err == nil {
		t.Fatal("Load accepted dangling references")
	}
	for _, want := range []string{
		`profiles/c/profile.json: key "features": unknown feature "x/onee" (did you mean x/one?)`,
		`features/x/one.json: key "requires": unknown feature "x/tow" (did you mean x/two?)`,
		`key "conflicts": unknown feature "y/z"`,
		`toggle PROSODY_FEATURES_X_ONE switches feature x/two but also feature x/one`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

func TestLoadCustomShadowsBuiltins(t *testing.T) {
	tree, err := pfe.Load("testdata/tree", "testdata/custom")
	if err != nil {
		t.Fatal(err)
	}
	sh := tree.Shadowed()
	if len(sh) != 2 || sh[0].Name != "small" || sh[1].Name != "mobile/csi" {
		t.Fatalf("shadowed = %+v, want profile small and feature mobile/csi", sh)
	}
	if got := tree.Profile("small").Features; len(got) != 2 {
		t.Errorf("custom small profile not used: features %q", got)
	}
	p, err := tree.Plan(baseInputs("small", "production"))
	if err != nil {
		t.Fatal(err)
	}
	if !has(featureNames(p), "mobile/push") || len(p.Shadowed) != 2 {
		t.Errorf("plan features %q shadowed %+v", featureNames(p), p.Shadowed)
	}
	if got := tree.Profiles(); strings.Join(got, ",") != "full,small" {
		t.Errorf("profiles = %q", got)
	}
	if tree.Feature("mobile/push") == nil || tree.Feature("nope") != nil || len(tree.Environments()) != 2 {
		t.Errorf("accessors disagree with the tree")
	}
}

func TestMissingModules(t *testing.T) {
	tree := loadTestTree(t)
	in := baseInputs("full", "production")
	in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH_EXTENSIONS": "true"}
	p, err := tree.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Every layout Prosody's plugin loader accepts.
	for _, rel := range []string{"mod_roster.lua", "mod_disco/mod_disco.lua", "mod_mam/mam/mod_mam.lua", "muc/mod_muc.lua"} {
		writeFile(t, filepath.Join(dir, rel), "-- test module\n")
	}
	byName := map[string]pfe.Missing{}
	for _, m := range pfe.MissingModules(p, []string{dir}) {
		byName[m.Module] = m
	}
	for _, present := range []string{"roster", "disco", "mam", "muc"} {
		if _, ok := byName[present]; ok {
			t.Errorf("%s reported missing although %s has it", present, dir)
		}
	}
	ext, ok := byName["cloud_notify_extensions"]
	if !ok || ext.Feature != "mobile/push" || !strings.Contains(ext.Hint, "https://modules.prosody.im/mod_cloud_notify_extensions.html") {
		t.Errorf("cloud_notify_extensions: %+v", ext)
	}
	if m := byName["smacks"]; m.Feature != "messaging/core" {
		t.Errorf("smacks: %+v", m)
	}
	// Debian's prosody package has every module the small test profile uses.
	small, err := tree.Plan(baseInputs("small", "production"))
	if err != nil {
		t.Fatal(err)
	}
	if miss := pfe.MissingModules(small, []string{pfe.DebianModuleDir}); len(miss) != 0 {
		t.Errorf("missing in %s: %+v (install the Debian packages prosody and prosody-modules)", pfe.DebianModuleDir, miss)
	}
}

// TestLoadListsProblemsInTreeOrder: the built-in features are read beside the
// other built-in files, yet every load lists the problems in the tree's order
// (core, profiles, features, environments), whichever part ends first. Run
// it with -race to check that the two parts share nothing.
func TestLoadListsProblemsInTreeOrder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "core/global.json"), `{"global": {"setings": {}}}`)
	writeFile(t, filepath.Join(dir, "profiles/a/profile.json"), `{"name": "b", "features": []}`)
	for _, n := range []string{"one", "two", "three", "four"} {
		writeFile(t, filepath.Join(dir, "features/x", n+".json"), `{"name": "x/`+n+`", "stability": "unsupported"}`)
	}
	writeFile(t, filepath.Join(dir, "environments/e.json"), `{"name": "e", "log_level": "loud"}`)
	want := []string{"core/global.json", "profiles/a/profile.json", "features/x/four.json", "features/x/one.json",
		"features/x/three.json", "features/x/two.json", "environments/e.json"}
	var first string
	for i := range 20 {
		_, err := pfe.Load(dir, "")
		if err == nil {
			t.Fatal("Load accepted a broken tree")
		}
		msg := err.Error()
		at := -1
		for _, w := range want {
			j := strings.Index(msg, w)
			if j <= at {
				t.Fatalf("load %d: %q is missing or out of the order %q:\n%s", i, w, want, msg)
			}
			at = j
		}
		if i == 0 {
			first = msg
		} else if msg != first {
			t.Fatalf("load %d listed the problems differently:\n%s\nfirst:\n%s", i, msg, first)
		}
	}
}

// BenchmarkLoadShippedTree loads the shipped config tree: most of the plan
// stage, which Prosody's start waits for.
func BenchmarkLoadShippedTree(b *testing.B) {
	for b.Loop() {
		if _, err := pfe.Load("../../config", ""); err != nil {
			b.Fatal(err)
		}
	}
}
