package luacfg_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
)

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prosody.cfg.lua")
	changed, err := luacfg.WriteAtomic(path, []byte("a = 1\n"), 0o640, -1, -1)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%t err=%v", changed, err)
	}
	st1, _ := os.Stat(path)
	if st1.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", st1.Mode().Perm())
	}
	changed, err = luacfg.WriteAtomic(path, []byte("a = 1\n"), 0o640, -1, -1)
	if err != nil || changed {
		t.Fatalf("same bytes: changed=%t err=%v, want unchanged", changed, err)
	}
	st2, _ := os.Stat(path)
	if st1.Sys().(*syscall.Stat_t).Ino != st2.Sys().(*syscall.Stat_t).Ino || !st1.ModTime().Equal(st2.ModTime()) {
		t.Errorf("file was touched although the bytes are equal")
	}
	changed, err = luacfg.WriteAtomic(path, []byte("a = 2\n"), 0o640, -1, -1)
	if err != nil || !changed {
		t.Fatalf("new bytes: changed=%t err=%v", changed, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "a = 2\n" {
		t.Errorf("content = %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteAtomicChownsToProsody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root; the non-root path is covered by TestWriteAtomic")
	}
	u, err := user.Lookup("prosody")
	if err != nil {
		t.Fatalf("user prosody is needed: install the Debian package prosody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	path := filepath.Join(t.TempDir(), "prosody.cfg.lua")
	if _, err := luacfg.WriteAtomic(path, []byte("x = 1\n"), 0o640, uid, gid); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if s := st.Sys().(*syscall.Stat_t); int(s.Uid) != uid || int(s.Gid) != gid {
		t.Errorf("owner = %d:%d, want %d:%d", s.Uid, s.Gid, uid, gid)
	}
	// Same bytes, another owner and mode (PROSODY_UID changed between two
	// starts): the file must follow, or the new user cannot read it.
	changed, err := luacfg.WriteAtomic(path, []byte("x = 1\n"), 0o400, 0, 0)
	if err != nil || changed {
		t.Fatalf("rewrite with equal bytes: changed=%t err=%v", changed, err)
	}
	st, _ = os.Stat(path)
	if s := st.Sys().(*syscall.Stat_t); s.Uid != 0 || s.Gid != 0 || st.Mode().Perm() != 0o400 {
		t.Errorf("equal bytes kept owner %d:%d mode %v, want 0:0 0400", s.Uid, s.Gid, st.Mode().Perm())
	}
}

func TestWriteAtomicMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "prosody.cfg.lua")
	if _, err := luacfg.WriteAtomic(path, []byte("x"), 0o644, -1, -1); err == nil {
		t.Errorf("write into a missing directory succeeded")
	}
}
