package entrypointtest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFreePortsAreDistinct(t *testing.T) {
	ports, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice in %v", p, ports)
		}
		seen[p] = true
	}
}

// MakeRoot makes a server root the prosody user can enter, and only adds
// search permission to the parent: a shared parent like /tmp keeps its
// sticky bit and write permissions.
func TestMakeRootKeepsParentMode(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o770|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(parent, "server")
	if err := MakeRoot(root); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(parent)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o771 {
		t.Errorf("parent mode %v, want sticky 0771 (0770 plus search for others)", fi.Mode())
	}
	for _, d := range append([]string{""}, Subdirs...) {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v, want a 0755 directory", filepath.Join(root, d), fi.Mode(), err)
		}
	}
}
