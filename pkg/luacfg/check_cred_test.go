package luacfg_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// With Cred, both checkers run as that user: Lua in the file runs with its
// rights (the file it creates is its), and a file it cannot read fails the
// check instead of being read as root.
func TestCheckRunsAsCred(t *testing.T) {
	needProsodyctl(t)
	uid, gid := prosodytest.IDs(t)
	cred := &supervise.Credential{UID: uint32(uid), GID: uint32(gid)}
	dir := prosodytest.Dir(t)
	marker := filepath.Join(dir, "marker")
	path := filepath.Join(dir, "lua.cfg.lua")
	cfg := fmt.Sprintf("local f = Lua.io.open(%q, \"w\"); f:close()\nVirtualHost \"example.com\"\n", marker)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := luacfg.Check(context.Background(), path, luacfg.CheckOptions{Cred: cred}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	fi, err := os.Stat(marker)
	if err != nil {
		t.Fatalf("the file's Lua did not run: %v", err)
	}
	if owner := fi.Sys().(*syscall.Stat_t).Uid; int(owner) != uid {
		t.Fatalf("the file's Lua ran as uid %d, want prosody's %d", owner, uid)
	}

	if err := os.Chmod(path, 0o600); err != nil { // root's only
		t.Fatal(err)
	}
	if _, err := luacfg.Check(context.Background(), path, luacfg.CheckOptions{Cred: cred}); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("Check of a file prosody cannot read = %v, want permission denied", err)
	}
}
