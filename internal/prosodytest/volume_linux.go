package prosodytest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Volume mounts a new tmpfs of size bytes (a multiple of 4096) on a fresh
// directory and returns that directory: a small, real volume that a test
// fills to see what a full data volume does. The mount is private to the
// test and unmounted at cleanup (before the directory is removed). It needs
// root (CAP_SYS_ADMIN), as the tests of this repository run.
func Volume(t testing.TB, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "volume")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.Itoa(size)+",mode=0755"); err != nil {
		t.Fatalf("mount a %d-byte tmpfs on %s (needs root): %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file named .filler into dir until its filesystem is full
// (ENOSPC), then gives back leave blocks of it, and checks that exactly
// leave blocks are free. Remove the filler to free the volume.
func Fill(t testing.TB, dir string, leave int) {
	t.Helper()
	path := filepath.Join(dir, ".filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	bs := st.Bsize
	chunk := make([]byte, bs)
	var n int64
	for {
		w, err := f.Write(chunk)
		n += int64(w)
		if errors.Is(err, unix.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("fill %s: %v", dir, err)
		}
		if n > 1<<30 {
			t.Fatalf("fill %s: 1 GiB written and not full: not a small volume", dir)
		}
	}
	blocks := (n + bs - 1) / bs
	if int64(leave) > blocks {
		t.Fatalf("fill %s: only %d blocks to give back, %d asked", dir, blocks, leave)
	}
	if err := f.Truncate((blocks - int64(leave)) * bs); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Bavail != uint64(leave) {
		t.Fatalf("fill %s: %d blocks free, want %d", dir, st.Bavail, leave)
	}
}
