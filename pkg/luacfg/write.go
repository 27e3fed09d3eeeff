package luacfg

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteAtomic makes path hold data with the given mode and owner. When the file already
// holds exactly data its bytes are not rewritten and changed is false; its mode and owner
// are still set (a changed PROSODY_UID must not leave a file the new user cannot read). Otherwise data goes to a
// temporary file in the same directory, which is synced, chmodded, chowned to uid:gid
// (skipped when both are -1) and renamed over path, and the directory is synced: a reader
// sees the old file or the new one, never a mix.
func WriteAtomic(path string, data []byte, mode os.FileMode, uid, gid int) (changed bool, err error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		if err := os.Chmod(path, mode); err != nil {
			return false, fmt.Errorf("write %s: chmod %v: %w", path, mode, err)
		}
		if uid != -1 || gid != -1 {
			if err := os.Chown(path, uid, gid); err != nil {
				return false, fmt.Errorf("write %s: chown %d:%d: %w", path, uid, gid, err)
			}
		}
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("write %s: read current file: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("write %s: create temporary file: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmpName) // best effort: the error below is what matters
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err = tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("write %s: chmod %v: %w", tmpName, mode, err)
	}
	if uid != -1 || gid != -1 {
		if err = tmp.Chown(uid, gid); err != nil {
			_ = tmp.Close()
			return false, fmt.Errorf("write %s: chown %d:%d: %w", tmpName, uid, gid, err)
		}
	}
	if err = tmp.Sync(); err != nil {
		_ = tmp.Close()
		return false, fmt.Errorf("write %s: fsync: %w", tmpName, err)
	}
	if err = tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: close: %w", tmpName, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return false, fmt.Errorf("write %s: rename from %s: %w", path, tmpName, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		// The rename is durable only once the directory entry is synced.
		serr := d.Sync()
		_ = d.Close()
		if serr != nil {
			return true, fmt.Errorf("write %s: fsync directory %s: %w", path, dir, serr)
		}
	}
	return true, nil
}
