package atomicfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

func TestWriteReportsChangeAndKeepsUnchangedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prosody.cfg.lua")
	changed, err := atomicfile.Write(path, []byte("a = 1\n"), 0o640, -1, -1)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%t err=%v", changed, err)
	}
	st1 := stat(t, path)
	if st1.Mode&0o777 != 0o640 {
		t.Errorf("mode = %#o, want 0640", st1.Mode&0o777)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err = atomicfile.Write(path, []byte("a = 1\n"), 0o640, -1, -1)
	if err != nil || changed {
		t.Fatalf("same bytes: changed=%t err=%v, want unchanged", changed, err)
	}
	st2 := stat(t, path)
	if st1.Ino != st2.Ino || st2.Mode&0o777 != 0o640 {
		t.Errorf("same bytes: inode %d->%d, mode %#o: want the same inode, mode reset to 0640", st1.Ino, st2.Ino, st2.Mode&0o777)
	}
	changed, err = atomicfile.Write(path, []byte("a = 2\n"), 0o640, -1, -1)
	if err != nil || !changed {
		t.Fatalf("new bytes: changed=%t err=%v", changed, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "a = 2\n" {
		t.Errorf("content = %q", got)
	}
	assertOnly(t, dir, "prosody.cfg.lua")
}

func TestWriteSetsOwnerOnDescriptor(t *testing.T) {
	uid, gid := rootAndProsody(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if _, err := atomicfile.Write(path, []byte("k"), 0o600, uid, gid); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, path); int(st.Uid) != uid || int(st.Gid) != gid || st.Mode&0o7777 != 0o600 {
		t.Errorf("owner %d:%d mode %#o, want %d:%d 0600", st.Uid, st.Gid, st.Mode&0o7777, uid, gid)
	}
}

// TestWriteRefusesNonRegular: a device, a FIFO, a directory or a socket at
// the target is refused and left as it was, without blocking.
func TestWriteRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dev/null", fifo, sub} {
		before := stat(t, path)
		done := make(chan error, 1)
		go func() { _, err := atomicfile.Write(path, []byte("x"), 0o644, -1, -1); done <- err }()
		select {
		case err := <-done:
			var ke *atomicfile.KindError
			if !errors.As(err, &ke) || !errors.Is(err, atomicfile.ErrNotRegular) || !strings.Contains(err.Error(), path) {
				t.Errorf("Write(%s) = %v, want a KindError naming the path", path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Write(%s) blocked", path)
		}
		if after := stat(t, path); after.Ino != before.Ino || after.Mode != before.Mode {
			t.Errorf("%s was replaced", path)
		}
		if _, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{}); !errors.Is(err, atomicfile.ErrNotRegular) {
			t.Errorf("ReadFile(%s) = %v, want ErrNotRegular", path, err)
		}
	}
	assertOnly(t, dir, "fifo", "sub")
}

func TestReadFileCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{MaxBytes: 99}); !errors.Is(err, atomicfile.ErrTooLarge) {
		t.Errorf("over the cap: %v, want ErrTooLarge", err)
	}
	if b, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{MaxBytes: 100}); err != nil || len(b) != 100 {
		t.Errorf("at the cap: %d bytes, %v", len(b), err)
	}
}

// TestDirReadFile: a Dir reads the files in it as ReadFile reads them by
// path: the bytes, the cap, a FIFO refused at once, the links of a
// Kubernetes volume followed; a name must be one path component.
func TestDirReadFile(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_01_01")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "features.json"), []byte(`{"a": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "..2026_01_01", filepath.Join(dir, "..data"))
	mustSymlink(t, "..data/features.json", filepath.Join(dir, "features.json"))
	if err := os.WriteFile(filepath.Join(dir, "plain.json"), bytes.Repeat([]byte("x"), 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := atomicfile.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if b, err := d.ReadFile("plain.json", atomicfile.ReadOptions{}); err != nil || len(b) != 5000 {
		t.Errorf("plain file: %d bytes, %v; want 5000", len(b), err)
	}
	if b, err := d.ReadFile("features.json", atomicfile.ReadOptions{}); err != nil || string(b) != `{"a": 1}` {
		t.Errorf("through the volume's trusted links: %q, %v", b, err)
	}
	if _, err := d.ReadFile("plain.json", atomicfile.ReadOptions{MaxBytes: 4999}); !errors.Is(err, atomicfile.ErrTooLarge) {
		t.Errorf("over the cap: %v, want ErrTooLarge", err)
	}
	_, err = d.ReadFile("fifo.json", atomicfile.ReadOptions{})
	var ke *atomicfile.KindError
	if !errors.As(err, &ke) || !strings.Contains(err.Error(), filepath.Join(dir, "fifo.json")) {
		t.Errorf("FIFO: %v, want a KindError naming it", err)
	}
	for _, name := range []string{"../plain.json", "..data/features.json", "", ".."} {
		if _, err := d.ReadFile(name, atomicfile.ReadOptions{}); err == nil {
			t.Errorf("ReadFile(%q) = nil error, want a refusal of a name that is not one component", name)
		}
	}
	if _, err := atomicfile.OpenDir(filepath.Join(dir, "plain.json")); err == nil {
		t.Error("OpenDir of a regular file: nil error")
	}
}

// TestLinksInTrustedDirectoriesAreFollowed: Kubernetes Secret volumes are
// root-owned links (name -> ..data/name, ..data -> ..2026_x); they must work.
func TestLinksInTrustedDirectoriesAreFollowed(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_01_01")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "db_password"), []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "..2026_01_01", filepath.Join(dir, "..data"))
	mustSymlink(t, "..data/db_password", filepath.Join(dir, "db_password"))
	b, err := atomicfile.ReadFile(filepath.Join(dir, "db_password"), atomicfile.ReadOptions{})
	if err != nil || string(b) != "s3cret\n" {
		t.Fatalf("ReadFile through trusted links = %q, %v", b, err)
	}
	// Writing through a trusted link replaces its target, not the link.
	if _, err := atomicfile.Write(filepath.Join(dir, "db_password"), []byte("new"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "db_password")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(ts, "db_password")); string(b) != "new" {
		t.Errorf("target = %q, want new", b)
	}
}

// TestSymlinkAttackAsProsody runs the attack of the hardening issue: the
// prosody user, in a directory it owns, replaces a file root will read,
// write, chmod or chown by a link to a root-owned 0600 file (and a
// directory by a link to a root directory). Every operation must refuse,
// say why, and leave the root file's owner, mode and bytes as they were.
func TestSymlinkAttackAsProsody(t *testing.T) {
	uid, gid := rootAndProsody(t)
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} { // prosody must reach $DATA
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The root-owned victims.
	victimDir := filepath.Join(root, "rootdir")
	if err := os.Mkdir(victimDir, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(victimDir, "rootfile")
	if err := os.WriteFile(victim, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// $DATA: owned by prosody, as the directories stage leaves it.
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	prosodytest.AsProsody(t, "mkdir", "-m", "0700", filepath.Join(data, "secrets"))
	prosodytest.AsProsody(t, "ln", "-s", victim, filepath.Join(data, "secrets", "upload_secret"))
	prosodytest.AsProsody(t, "ln", "-s", victimDir, filepath.Join(data, "next"))
	if fi, err := os.Lstat(filepath.Join(data, "next")); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Fatalf("the link was not planted by prosody: %v %v", fi, err)
	}

	link := filepath.Join(data, "secrets", "upload_secret")
	ops := map[string]func() error{
		"ReadFile": func() error { _, err := atomicfile.ReadFile(link, atomicfile.ReadOptions{}); return err },
		"Write":    func() error { _, err := atomicfile.Write(link, []byte("x"), 0o644, uid, gid); return err },
		"Write same bytes": func() error {
			_, err := atomicfile.Write(link, []byte("root only\n"), 0o644, uid, gid)
			return err
		},
		"SetOwnerMode":    func() error { return atomicfile.SetOwnerMode(link, 0o644, uid, gid) },
		"MkdirOwned link": func() error { return atomicfile.MkdirOwned(filepath.Join(data, "next"), 0o755, uid, gid) },
		"Write below link": func() error {
			_, err := atomicfile.Write(filepath.Join(data, "next", "rootfile"), []byte("x"), 0o644, uid, gid)
			return err
		},
		"MkdirOwned below": func() error {
			return atomicfile.MkdirOwned(filepath.Join(data, "next", "credentials"), 0o700, uid, gid)
		},
		"SetOwnerMode below": func() error { return atomicfile.SetOwnerMode(filepath.Join(data, "next", "rootfile"), 0o644, uid, gid) },
		"ReadFile below link": func() error {
			_, err := atomicfile.ReadFile(filepath.Join(data, "next", "rootfile"), atomicfile.ReadOptions{})
			return err
		},
		"Dir.ReadFile": func() error {
			d, err := atomicfile.OpenDir(filepath.Join(data, "secrets"))
			if err != nil {
				return fmt.Errorf("OpenDir of prosody's own directory: %w", err)
			}
			defer d.Close()
			_, err = d.ReadFile("upload_secret", atomicfile.ReadOptions{})
			return err
		},
		"OpenDir link": func() error {
			d, err := atomicfile.OpenDir(filepath.Join(data, "next"))
			if err == nil {
				d.Close()
			}
			return err
		},
	}
	for name, op := range ops {
		err := op()
		var le *atomicfile.LinkError
		if !errors.As(err, &le) || !errors.Is(err, atomicfile.ErrUnsafeLink) || !strings.Contains(err.Error(), "refusing to follow symbolic link") {
			t.Errorf("%s: err = %v, want a refusal to follow the link", name, err)
		}
		st := stat(t, victim)
		if st.Uid != 0 || st.Gid != 0 || st.Mode&0o7777 != 0o600 {
			t.Fatalf("%s: victim is now %d:%d %#o", name, st.Uid, st.Gid, st.Mode&0o7777)
		}
		if b, _ := os.ReadFile(victim); string(b) != "root only\n" {
			t.Fatalf("%s: victim bytes %q", name, b)
		}
		if st := stat(t, victimDir); st.Uid != 0 || st.Mode&0o7777 != 0o700 {
			t.Fatalf("%s: victim directory is now %d %#o", name, st.Uid, st.Mode&0o7777)
		}
		assertOnly(t, victimDir, "rootfile")
	}
	// Root's own writes into prosody's directory still work, and replace
	// nothing but the link.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if _, err := atomicfile.Write(link, []byte("generated"), 0o600, uid, gid); err != nil {
		t.Fatalf("plain write into prosody's directory: %v", err)
	}
}

// TestHardLinkIsNotReowned: a second name for a file is never chmodded or
// chowned in place.
func TestHardLinkIsNotReowned(t *testing.T) {
	uid, gid := rootAndProsody(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("same"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Link(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.SetOwnerMode(link, 0o644, uid, gid); !errors.Is(err, atomicfile.ErrHardLinked) {
		t.Errorf("SetOwnerMode on a hard link = %v, want ErrHardLinked", err)
	}
	// Same bytes: replaced by rename, never re-owned in place.
	if changed, err := atomicfile.Write(link, []byte("same"), 0o644, uid, gid); err != nil || !changed {
		t.Errorf("Write on a hard link: changed=%t err=%v, want a replacement", changed, err)
	}
	if st := stat(t, victim); st.Uid != 0 || st.Mode&0o777 != 0o600 {
		t.Errorf("victim is now %d %#o", st.Uid, st.Mode&0o777)
	}
}

func TestCreateStreamsAndAborts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.tar.gz")
	w, err := atomicfile.Create(path, 0o640, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("part")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target exists before Commit: %v", err)
	}
	w.Abort()
	assertOnly(t, dir)
	w, err = atomicfile.Create(path, 0o640, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write([]byte("whole")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "whole" {
		t.Errorf("content %q", b)
	}
	assertOnly(t, dir, "backup.tar.gz")
}

func TestMkdirOwned(t *testing.T) {
	uid, gid := rootAndProsody(t)
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := atomicfile.MkdirOwned(dir, 0o750, uid, gid); err != nil {
		t.Fatal(err)
	}
	if st := stat(t, dir); int(st.Uid) != uid || st.Mode&0o777 != 0o750 {
		t.Errorf("%d %#o", st.Uid, st.Mode&0o777)
	}
	if st := stat(t, filepath.Dir(dir)); st.Uid != 0 {
		t.Errorf("parent owned by %d, want this process", st.Uid)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.MkdirOwned(file, 0o750, -1, -1); !errors.Is(err, atomicfile.ErrNotRegular) {
		t.Errorf("MkdirOwned on a file = %v, want a KindError", err)
	}
}

func TestWriteOrStdout(t *testing.T) {
	var out bytes.Buffer
	changed, err := atomicfile.WriteOrStdout(atomicfile.Stdout, &out, []byte("hi"), 0o644, -1, -1)
	if err != nil || !changed || out.String() != "hi" {
		t.Errorf("stdout: %t %v %q", changed, err, out.String())
	}
	if _, err := os.Stat(atomicfile.Stdout); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file named - was created")
	}
}

func stat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// rootAndProsody is the prosody user's uid and gid; these tests run as root
// with the prosody package installed (scripts/install-deps), as CI does.
func rootAndProsody(t *testing.T) (int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root: they check what a root entrypoint does in directories the prosody user owns")
	}
	return prosodytest.IDs(t)
}
