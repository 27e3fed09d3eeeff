//go:build !linux

package atomicfile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The checks below are made on paths, not descriptors: they refuse the same
// files as on Linux, but a file swapped between a check and its use is not
// caught. The entrypoint runs as a root PID 1 only on Linux.

func check(path string) (fs.FileInfo, error) {
	dir := filepath.Dir(path)
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		di, err := os.Stat(dir)
		if err != nil {
			return nil, err
		}
		if di.Mode().Perm()&0o022 != 0 {
			return nil, &LinkError{Link: path, Dir: dir, Detail: fmt.Sprintf("mode %#o", di.Mode().Perm())}
		}
		if fi, err = os.Stat(path); err != nil {
			return nil, err
		}
	}
	if fi.Mode().Type() != 0 {
		return nil, &KindError{Path: path, Kind: kindName(fi.Mode())}
	}
	return fi, nil
}

// Open: see the Linux version.
func Open(path string) (*os.File, error) {
	if _, err := check(path); err != nil {
		return nil, err
	}
	return os.Open(path)
}

// Write: see the Linux version.
func Write(path string, data []byte, mode os.FileMode, uid, gid int) (bool, error) {
	if _, err := check(path); err == nil {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return false, SetOwnerMode(path, mode, uid, gid)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	w, err := Create(path, mode, uid, gid)
	if err != nil {
		return false, err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return false, err
	}
	return true, w.Commit()
}

// Pending: see the Linux version.
type Pending struct {
	f        *os.File
	target   string
	old      string // WriteAll: a second name of the target, "" when none
	mode     os.FileMode
	uid, gid int
	finished bool
}

// Create: see the Linux version.
func Create(path string, mode os.FileMode, uid, gid int) (*Pending, error) {
	if _, err := check(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	tmp := hiddenName(path, "tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, NoSpace(filepath.Dir(path), fmt.Errorf("write %s: create temporary file: %w", path, err))
	}
	return &Pending{f: f, target: path, mode: mode, uid: uid, gid: gid}, nil
}

// hiddenName is ".<name>.<what>-<random>" beside path.
func hiddenName(path, what string) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+what+"-"+hex.EncodeToString(rnd[:]))
}

// Name: see the Linux version.
func (w *Pending) Name() string { return w.f.Name() }

// Target: see the Linux version.
func (w *Pending) Target() string { return w.target }

// Write: see the Linux version.
func (w *Pending) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	return n, NoSpace(filepath.Dir(w.target), err)
}

// Commit: see the Linux version.
func (w *Pending) Commit() error {
	if w.finished {
		return errors.New("atomicfile: Commit after Commit or Abort")
	}
	if err := w.seal(); err != nil {
		w.Abort()
		return err
	}
	if err := w.install(); err != nil {
		w.Abort()
		return err
	}
	w.finish()
	return nil
}

func (w *Pending) seal() error {
	err := func() error {
		if w.uid != -1 || w.gid != -1 {
			if err := w.f.Chown(w.uid, w.gid); err != nil {
				return err
			}
		}
		if err := w.f.Chmod(w.mode); err != nil {
			return err
		}
		return w.f.Sync()
	}()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return NoSpace(filepath.Dir(w.target), fmt.Errorf("write %s: %w", w.target, err))
	}
	return nil
}

func (w *Pending) keepOld() error {
	if _, err := check(w.target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", w.target, err)
	}
	old := hiddenName(w.target, "old")
	if err := os.Link(w.target, old); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return NoSpace(filepath.Dir(w.target), fmt.Errorf("write %s: keep the current file: %w", w.target, err))
	}
	w.old = old
	return nil
}

func (w *Pending) install() error {
	if _, err := check(w.target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", w.target, err)
	}
	if err := os.Rename(w.f.Name(), w.target); err != nil {
		return NoSpace(filepath.Dir(w.target), fmt.Errorf("write %s: %w", w.target, err))
	}
	if d, err := os.Open(filepath.Dir(w.target)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func (w *Pending) rollback() error {
	var err error
	if w.old != "" {
		err = os.Rename(w.old, w.target)
	} else {
		err = os.Remove(w.target)
	}
	if err != nil {
		err = fmt.Errorf("write %s: put the previous file back: %w", w.target, err)
		if w.old != "" {
			err = fmt.Errorf("%w; it is kept as %s", err, w.old)
		}
	}
	w.old = ""
	return err
}

func (w *Pending) finish() {
	w.finished = true
	if w.old != "" {
		_ = os.Remove(w.old)
	}
}

// Abort: see the Linux version.
func (w *Pending) Abort() {
	if w.finished {
		return
	}
	w.finished = true
	_ = w.f.Close() // ErrClosed after seal: harmless
	_ = os.Remove(w.f.Name())
	if w.old != "" {
		_ = os.Remove(w.old)
	}
}

// SetOwnerMode: see the Linux version.
func SetOwnerMode(path string, mode os.FileMode, uid, gid int) error {
	if _, err := check(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if uid != -1 || gid != -1 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("chown %s to %d:%d: %w", path, uid, gid, err)
		}
	}
	return f.Chmod(mode)
}

// EnsureFile: see the Linux version.
func EnsureFile(path string, mode os.FileMode, uid, gid int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return SetOwnerMode(path, mode, uid, gid)
	}
	if err != nil {
		return NoSpace(filepath.Dir(path), fmt.Errorf("create %s: %w", path, err))
	}
	defer f.Close()
	if uid != -1 || gid != -1 {
		if err := f.Chown(uid, gid); err != nil {
			_ = os.Remove(path)
			return fmt.Errorf("chown %s to %d:%d: %w", path, uid, gid, err)
		}
	}
	return f.Chmod(mode)
}

// MkdirOwned: see the Linux version.
func MkdirOwned(path string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return NoSpace(filepath.Dir(path), fmt.Errorf("create directory %s: %w", path, err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &KindError{Path: path, Kind: kindName(fi.Mode())}
	}
	if uid != -1 || gid != -1 {
		if err := os.Lchown(path, uid, gid); err != nil {
			return err
		}
	}
	return os.Chmod(path, mode)
}

// Owner returns an error off Linux: the data directory is adopted only there.
func Owner(path string) (uid, gid int, err error) {
	return 0, 0, fmt.Errorf("owner of %s: not supported off Linux", path)
}

// Adopt returns an error off Linux.
func Adopt(dir string, _, _, _ int) (int, error) {
	return 0, fmt.Errorf("adopt %s: not supported off Linux", dir)
}

// Dir: see the Linux version (here a path; the checks are made per file).
type Dir struct{ path string }

// OpenDir: see the Linux version.
func OpenDir(path string) (*Dir, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
	}
	return &Dir{path: path}, nil
}

// ReadFile: see the Linux version.
func (d *Dir) ReadFile(name string, opts ReadOptions) ([]byte, error) {
	path := filepath.Join(d.path, name)
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("read %s: %q is not a file name in %s", path, name, d.path)
	}
	return ReadFile(path, opts)
}

// Path: see the Linux version.
func (d *Dir) Path() string { return d.path }

// Close: see the Linux version.
func (d *Dir) Close() error { return nil }
