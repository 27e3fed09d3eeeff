package watch_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/watch"
)

// A ConfigMap whose items have nested paths (path: profiles/team/profile.json)
// is mounted with a symlink per top-level directory: profiles -> ..data/profiles.
// The swap of ..data must be seen through that directory link, and a link loop
// must not hang the walk.
func TestKubernetesDataSwapThroughDirectoryLink(t *testing.T) {
	vol := t.TempDir()
	key := filepath.Join(vol, "profiles", "team", "profile.json")
	nested := func(ts, content string) {
		if err := os.MkdirAll(filepath.Join(vol, ts, "profiles", "team"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(vol, ts, "profiles", "team", "profile.json"), content)
	}
	nested("..2026_01_01_00_00_00.1", `{"v":1}`)
	if err := os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(vol, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "profiles"), filepath.Join(vol, "profiles")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(vol, "loop")); err != nil {
		t.Fatal(err)
	}
	w := start(t, watch.Config{Dirs: []string{vol}, Rescan: -1})

	nested("..2026_01_01_00_01_00.2", `{"v":2}`)
	tmp := filepath.Join(vol, "..data_tmp")
	if err := os.Symlink("..2026_01_01_00_01_00.2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(vol, "..2026_01_01_00_00_00.1")); err != nil {
		t.Fatal(err)
	}
	ch := waitFor(t, w, key)
	if !slices.Contains(ch.Paths, key) {
		t.Errorf("Paths = %v, want %s", ch.Paths, key)
	}
}
