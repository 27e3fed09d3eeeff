package tlscerts

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// identity is the user Prosody runs as, for permission checks.
type identity struct {
	uid  int
	gids []int // primary group first, then supplementary groups
}

// targetIdentity resolves who will read the files: uid/gid when uid >= 0
// (supplementary groups from the user database, e.g. Debian's ssl-cert),
// else the current process.
func targetIdentity(uid, gid int) identity {
	if uid < 0 {
		id := identity{uid: os.Geteuid(), gids: []int{os.Getegid()}}
		if gs, err := os.Getgroups(); err == nil {
			id.gids = append(id.gids, gs...)
		}
		return id
	}
	id := identity{uid: uid}
	if gid >= 0 {
		id.gids = append(id.gids, gid)
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		if gs, err := u.GroupIds(); err == nil {
			for _, g := range gs {
				if n, err := strconv.Atoi(g); err == nil && !slices.Contains(id.gids, n) {
					id.gids = append(id.gids, n)
				}
			}
		}
	}
	return id
}

// permits applies the owner/group/other permission bits of fi for id; bit
// is 4 (read) or 1 (search).
func permits(fi os.FileInfo, id identity, bit os.FileMode) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	mode := fi.Mode().Perm()
	switch {
	case int(st.Uid) == id.uid:
		return mode&(bit<<6) != 0
	case slices.Contains(id.gids, int(st.Gid)):
		return mode&(bit<<3) != 0
	default:
		return mode&bit != 0
	}
}

// describe is "mode 0600, owner 0:0" for a problem's detail.
func describe(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("mode %#o, owner %d:%d", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	return fmt.Sprintf("mode %#o", fi.Mode().Perm())
}

// readableBy reports whether id can open path for reading: every directory
// on the way (both the given path and, after symlinks, the real one, e.g.
// certbot's 0700 archive/) must be searchable and the file readable. When
// not, the string says which element blocks and why.
func readableBy(path string, id identity) (bool, string, error) {
	if id.uid == 0 {
		return true, "", nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, "", fmt.Errorf("resolve %s: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return false, "", fmt.Errorf("resolve symlinks of %s: %w", path, err)
	}
	for _, p := range []string{abs, real} {
		for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
			fi, err := os.Stat(dir)
			if err != nil {
				return false, "", fmt.Errorf("stat %s: %w", dir, err)
			}
			if !permits(fi, id, 1) {
				return false, fmt.Sprintf("directory %s (%s) is not searchable by uid %d", dir, describe(fi), id.uid), nil
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return false, "", fmt.Errorf("stat %s: %w", real, err)
	}
	if !permits(fi, id, 4) {
		return false, fmt.Sprintf("%s (%s) is not readable by uid %d", real, describe(fi), id.uid), nil
	}
	return true, "", nil
}

// worldReadable reports whether anyone on the machine can read path.
func worldReadable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o004 != 0
}

// canStage reports whether this process can give Prosody's user a private
// copy: it must read any file and chown to another user, i.e. be root.
func canStage(uid int) bool {
	return os.Geteuid() == 0 && uid >= 0
}
