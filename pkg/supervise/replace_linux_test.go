package supervise

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// ExecReplace as a user by name gives the program that user's primary group
// and its supplementary groups (the Debian postgres user is in ssl-cert), and
// none of the entrypoint's: root's groups are gone.
func TestExecReplaceKeepsTheUsersGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: only root can switch users (CI runs the tests as root)")
	}
	if _, err := user.Lookup("postgres"); err != nil {
		t.Fatalf("%v (install the Debian package postgresql, which creates the user)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = []string{replaceEnv + "=postgres", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("replaced process: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	_, groups, _ := strings.Cut(got, "groups=")
	if !strings.Contains(groups, "(ssl-cert)") || !strings.Contains(groups, "(postgres)") || strings.Contains(groups, "(root)") {
		t.Errorf("id = %q; want the groups postgres and ssl-cert, and not root", got)
	}
}
