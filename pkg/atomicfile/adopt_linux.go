package atomicfile

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Owner returns the uid and gid that own path's directory, resolved as
// MkdirOwned resolves it (the last link followed only when trusted).
func Owner(path string) (uid, gid int, err error) {
	p, err := resolve(path, true, 0)
	if err != nil {
		return 0, 0, err
	}
	defer p.close()
	var st unix.Stat_t
	if err := unix.Fstatat(p.fd, p.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: p.path(), Err: err}
	}
	return int(st.Uid), int(st.Gid), nil
}

// Adopt gives the directory dir, and every file and directory under it that
// belongs to the uid from, to uid:gid: what moving a data volume from an
// image whose prosody user has another uid needs. It never follows a link:
// directories are entered by descriptor with O_NOFOLLOW, entries are
// re-owned with fchownat(AT_SYMLINK_NOFOLLOW) relative to them, and links
// themselves are left as they are. Entries of other owners are left alone
// (and not entered). Modes are kept. A directory is re-owned after its
// entries, so a walk that fails leaves the top as it was. It returns how many
// entries it re-owned, the top included; a failure stops it and says where.
func Adopt(dir string, from, uid, gid int) (n int, err error) {
	p, err := resolve(dir, true, 0)
	if err != nil {
		return 0, fmt.Errorf("adopt %s: %w", dir, err)
	}
	defer p.close()
	fd, err := unix.Openat(p.fd, p.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("adopt %s: open: %w", dir, err)
	}
	return adoptDir(fd, p.path(), from, uid, gid, 0)
}

// maxAdoptDepth bounds the walk: a data volume is a few levels deep.
const maxAdoptDepth = 64

// adoptDir re-owns the open directory fd (which it closes) and its entries of
// uid from, depth levels below the top.
func adoptDir(fd int, path string, from, uid, gid, depth int) (int, error) {
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("adopt %s: %w", path, err)
	}
	n := 0
	if depth >= maxAdoptDepth {
		return n, fmt.Errorf("adopt %s: deeper than %d levels", path, maxAdoptDepth)
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		return n, fmt.Errorf("adopt %s: read: %w", path, err)
	}
	for _, e := range entries {
		name, child := e.Name(), path+"/"+e.Name()
		var est unix.Stat_t
		if err := unix.Fstatat(fd, name, &est, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return n, fmt.Errorf("adopt %s: %w", child, err)
		}
		if int(est.Uid) != from {
			continue
		}
		switch est.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			continue
		case unix.S_IFDIR:
			cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return n, fmt.Errorf("adopt %s: open: %w", child, err)
			}
			m, err := adoptDir(cfd, child, from, uid, gid, depth+1)
			n += m
			if err != nil {
				return n, err
			}
		default:
			// Relative to the directory's descriptor and without following a
			// link: an entry swapped for a link since the fstatat is re-owned
			// itself, never its target.
			if err := unix.Fchownat(fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return n, fmt.Errorf("adopt %s: chown: %w", child, err)
			}
			n++
		}
	}
	// The directory last: a walk that stops half-way leaves the top to the
	// other uid, and the next start, which looks only at the top, tries again.
	if int(st.Uid) == from {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return n, fmt.Errorf("adopt %s: chown: %w", path, err)
		}
		n++
	}
	return n, nil
}
