package checkcache_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
	"github.com/prosody-pfe/prosody-pfe/pkg/checkcache"
)

func key(s string) string {
	var k checkcache.Key
	k.AddString("test", s)
	return k.Sum()
}

// A recorded pass is found again; another key is not; the file keeps the
// most recent MaxEntries keys.
func TestRecordAndLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), checkcache.FileName)
	if hit, why := checkcache.Lookup(path, key("a")); hit || why == "" {
		t.Fatalf("empty cache: hit %v (%q)", hit, why)
	}
	if err := checkcache.Record(path, key("a")); err != nil {
		t.Fatal(err)
	}
	if hit, why := checkcache.Lookup(path, key("a")); !hit {
		t.Fatalf("recorded key not found: %s", why)
	}
	if hit, _ := checkcache.Lookup(path, key("b")); hit {
		t.Fatal("a key never recorded was found")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("verdict file: %v %v; want mode 0600", fi, err)
	}
	for i := 0; i < checkcache.MaxEntries; i++ {
		if err := checkcache.Record(path, key(string(rune('c'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if hit, _ := checkcache.Lookup(path, key("a")); hit {
		t.Errorf("the oldest of %d keys is still there", checkcache.MaxEntries+1)
	}
}

// Keys differ when any input differs, and inputs never run together.
func TestKeyFraming(t *testing.T) {
	var a, b checkcache.Key
	a.AddString("x", "ab")
	a.AddString("y", "c")
	b.AddString("x", "a")
	b.AddString("y", "bc")
	if a.Sum() == b.Sum() {
		t.Fatal("two different inputs give one key")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "prog")
	if err := os.WriteFile(f, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	var k1, k2 checkcache.Key
	k1.AddFiles(f)
	before := ctime(t, f)
	// Same size, same inode: only the times tell the rewrite. A kernel with
	// coarse file times gives a rewrite in the same tick the same times, so
	// rewrite until the change time moves.
	wait.Until(t, 5*time.Second, "the rewrite to get a new change time", func() error {
		if err := os.WriteFile(f, []byte("v2"), 0o755); err != nil {
			return wait.Abort(err)
		}
		if ctime(t, f) == before {
			return errors.New("change time unchanged")
		}
		return nil
	})
	k2.AddFiles(f)
	if k1.Sum() == k2.Sum() {
		t.Error("a rewritten program keeps its identity")
	}
}

// A verdict file that prosody could have written, or that is not the file
// itself, is ignored (and replaced by the next Record), so prosody cannot make
// the entrypoint skip a check: a link to a valid file, a file owned by
// prosody, one others may access, one with a second name.
func TestForgedVerdictsAreIgnored(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, dir, path, good string)
		why   string
	}{
		{"symbolic link planted by prosody", func(t *testing.T, dir, path, good string) {
			prosodytest.AsProsody(t, "ln", "-s", good, path)
		}, "symbolic link"},
		{"owned by prosody", func(t *testing.T, dir, path, good string) {
			readable := filepath.Join(filepath.Dir(good), "readable")
			copyFile(t, good, readable)
			if err := os.Chmod(readable, 0o644); err != nil {
				t.Fatal(err)
			}
			prosodytest.AsProsody(t, "cp", readable, path)
		}, "owned by uid"},
		{"mode 0644", func(t *testing.T, dir, path, good string) {
			copyFile(t, good, path)
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not private"},
		{"hard link", func(t *testing.T, dir, path, good string) {
			if err := os.Link(good, path); err != nil {
				t.Fatal(err)
			}
		}, "hard links"},
		{"another format", func(t *testing.T, dir, path, good string) {
			if err := os.WriteFile(path, []byte(key("a")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a verdict file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := prosodytest.Dir(t) // the data directory: prosody's
			elsewhere := t.TempDir()
			good := filepath.Join(elsewhere, "good")
			if err := checkcache.Record(good, key("a")); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(elsewhere, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, checkcache.FileName)
			tc.plant(t, dir, path, good)
			hit, why := checkcache.Lookup(path, key("a"))
			if hit || !strings.Contains(why, tc.why) {
				t.Fatalf("planted file: hit %v (%q), want ignored with %q", hit, why, tc.why)
			}
			if err := checkcache.Record(path, key("a")); err != nil {
				t.Fatalf("record over the planted file: %v", err)
			}
			if hit, why := checkcache.Lookup(path, key("a")); !hit {
				t.Fatalf("after Record: %s", why)
			}
			if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("after Record: %v %v", fi, err)
			}
			if fi, err := os.Stat(good); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the link's target was changed: %v %v", fi, err)
			}
		})
	}
}

func ctime(t *testing.T, path string) syscall.Timespec {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ctim
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
