package supervise

import (
	"os"
	"path/filepath"
	"testing"
)

// The prosodyctl wrapper is a link to the entrypoint placed first in PATH: looking up the
// program it stands for skips it (and any other link to the running executable) and finds
// the real one after it; were it found, the wrapper would exec itself forever.
func TestLookPathSkipsTheRunningExecutable(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrapperDir, realDir := t.TempDir(), t.TempDir()
	if err := os.Symlink(self, filepath.Join(wrapperDir, "prosodyctl")); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(realDir, "prosodyctl")
	if err := os.WriteFile(real, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := lookPathNotSelf("prosodyctl", []string{"PATH=" + wrapperDir + ":" + realDir})
	if err != nil || got != real {
		t.Fatalf("lookPathNotSelf = %q, %v; want %q", got, err, real)
	}
	if _, err := lookPathNotSelf("prosodyctl", []string{"PATH=" + wrapperDir}); err == nil {
		t.Fatal("only the wrapper in PATH: want an error, not the wrapper itself")
	}
}
