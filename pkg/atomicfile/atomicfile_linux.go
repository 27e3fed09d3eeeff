package atomicfile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks bounds the symbolic links followed while resolving one path, as
// the kernel's own limit does.
const maxLinks = 40

// parent is the resolved directory of a path's last component: an O_PATH
// descriptor, its path (for messages) and the last component's name.
type parent struct {
	fd   int
	dir  string
	name string
}

func (p parent) path() string { return filepath.Join(p.dir, p.name) }
func (p parent) close()       { _ = unix.Close(p.fd) }

// trusted reports whether a link in the directory open as fd may be
// followed, and describes the directory for a LinkError.
func trusted(fd int) (bool, string) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err.Error()
	}
	detail := fmt.Sprintf("owner %d:%d, mode %#o", st.Uid, st.Gid, st.Mode&0o7777)
	owner := st.Uid == 0 || int(st.Uid) == os.Geteuid()
	groupOK := st.Mode&0o020 == 0 || st.Gid == 0
	return owner && groupOK && st.Mode&0o002 == 0, detail
}

func splitPath(p string) []string {
	var out []string
	for c := range strings.SplitSeq(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// resolve walks path from "/" as the package doc says and returns its last
// component's directory. Links at the last component are followed (under the
// same rule) when followLast is set; otherwise the last component may be a
// link. mkdirMode, when not 0, creates missing directories on the way (not
// the last component) with that mode, owned by this process.
func resolve(path string, followLast bool, mkdirMode os.FileMode) (parent, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return parent{}, fmt.Errorf("resolve %s: %w", path, err)
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return parent{}, fmt.Errorf("resolve %s: open /: %w", path, err)
	}
	cur := "/"
	comps := splitPath(abs)
	if len(comps) == 0 {
		_ = unix.Close(fd)
		return parent{}, &KindError{Path: path, Kind: "directory"}
	}
	// The directories on the way hold no link in the common case: one
	// openat2 that refuses every link (RESOLVE_NO_SYMLINKS, checked by the
	// kernel at each component) opens the last component's directory, as
	// the walk below would, in one call instead of four per component. Any
	// failure (a link or a missing directory on the way, a kernel before
	// 5.6, a seccomp profile refusing openat2) leaves it to the walk, which
	// decides and reports.
	if len(comps) > 1 {
		dir := "/" + strings.Join(comps[:len(comps)-1], "/")
		how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS}
		if nfd, err := unix.Openat2(unix.AT_FDCWD, dir, &how); err == nil {
			_ = unix.Close(fd)
			fd, cur, comps = nfd, dir, comps[len(comps)-1:]
		}
	}
	links := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		last := len(comps) == 0
		var st unix.Stat_t
		err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.ENOENT && !last && mkdirMode != 0 {
			if err = unix.Mkdirat(fd, c, uint32(mkdirMode.Perm())); err == nil || err == unix.EEXIST {
				err = unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if last && (err == unix.ENOENT || (err == nil && (st.Mode&unix.S_IFMT != unix.S_IFLNK || !followLast))) {
			return parent{fd: fd, dir: cur, name: c}, nil
		}
		if err != nil {
			_ = unix.Close(fd)
			return parent{}, &fs.PathError{Op: "resolve", Path: filepath.Join(cur, c), Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if ok, detail := trusted(fd); !ok {
				_ = unix.Close(fd)
				return parent{}, &LinkError{Link: filepath.Join(cur, c), Dir: cur, Detail: detail}
			}
			if links++; links > maxLinks {
				_ = unix.Close(fd)
				return parent{}, &fs.PathError{Op: "resolve", Path: path, Err: unix.ELOOP}
			}
			target, err := readlinkat(fd, c)
			if err != nil {
				_ = unix.Close(fd)
				return parent{}, &fs.PathError{Op: "readlink", Path: filepath.Join(cur, c), Err: err}
			}
			if strings.HasPrefix(target, "/") {
				nfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				_ = unix.Close(fd)
				if err != nil {
					return parent{}, fmt.Errorf("resolve %s: open /: %w", path, err)
				}
				fd, cur = nfd, "/"
			}
			tc := splitPath(target)
			if len(tc) == 0 { // a link to "/" or "."
				tc = []string{"."}
			}
			comps = append(tc, comps...)
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			_ = unix.Close(fd)
			return parent{}, &fs.PathError{Op: "resolve", Path: filepath.Join(cur, c), Err: unix.ENOTDIR}
		}
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if err != nil {
			return parent{}, &fs.PathError{Op: "resolve", Path: filepath.Join(cur, c), Err: err}
		}
		// O_PATH|O_NOFOLLOW opens a link itself: a directory swapped for a
		// link since the fstatat is caught here.
		if err := unix.Fstat(nfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			_ = unix.Close(nfd)
			return parent{}, &fs.PathError{Op: "resolve", Path: filepath.Join(cur, c), Err: unix.ENOTDIR}
		}
		fd = nfd
		if c == ".." {
			cur = filepath.Dir(cur)
		} else {
			cur = filepath.Join(cur, c)
		}
	}
	// Only reached when the last component was a followed link to ".".
	_ = unix.Close(fd)
	return parent{}, &KindError{Path: path, Kind: "directory"}
}

func readlinkat(fd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func modeOf(st *unix.Stat_t) fs.FileMode {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFREG:
		return 0
	}
	return fs.ModeIrregular
}

// openRegular opens name in p for reading without following a link and
// without blocking, and returns it once fstat says it is a regular file.
func openRegular(p parent) (*os.File, *unix.Stat_t, error) {
	var st unix.Stat_t
	// Look before opening: opening a device can have side effects.
	if err := unix.Fstatat(p.fd, p.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: p.path(), Err: err}
	}
	if m := modeOf(&st); m.Type() != 0 {
		return nil, nil, &KindError{Path: p.path(), Kind: kindName(m)}
	}
	fd, err := unix.Openat(p.fd, p.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: p.path(), Err: err}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, nil, &fs.PathError{Op: "fstat", Path: p.path(), Err: err}
	}
	if m := modeOf(&st); m.Type() != 0 {
		_ = unix.Close(fd)
		return nil, nil, &KindError{Path: p.path(), Kind: kindName(m)}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd)
		return nil, nil, &fs.PathError{Op: "open", Path: p.path(), Err: err}
	}
	return os.NewFile(uintptr(fd), p.path()), &st, nil
}

// Open opens the regular file at path for reading: resolved as the package
// doc says, non-blocking (a FIFO never hangs it), refused with a *KindError
// when it is not a regular file. The caller closes the file.
func Open(path string) (*os.File, error) {
	p, err := resolve(path, true, 0)
	if err != nil {
		return nil, err
	}
	defer p.close()
	f, _, err := openRegular(p)
	return f, err
}

// Write makes path hold data with the given mode, owned by uid:gid (-1 keeps
// that id as the writer's, as in chown(2)). When the file already holds
// exactly data its bytes are not rewritten and changed is false; its mode and
// owner are still set, on the descriptor. Otherwise data goes through Create
// and Commit. An existing path that is not a regular file is refused with a
// *KindError and left as it was; a link is refused or followed as the
// package doc says.
func Write(path string, data []byte, mode os.FileMode, uid, gid int) (changed bool, err error) {
	p, err := resolve(path, true, 0)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	same, err := unchanged(p, data, mode, uid, gid)
	p.close()
	if err != nil || same {
		return false, err
	}
	w, err := Create(path, mode, uid, gid)
	if err != nil {
		return false, err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return false, err
	}
	if err := w.Commit(); err != nil {
		return false, err
	}
	return true, nil
}

// unchanged reports whether p already names a regular file holding data, and
// if so sets its mode and owner on the descriptor. A file with several hard
// links is never touched in place (it is reported as changed, and replaced).
func unchanged(p parent, data []byte, mode os.FileMode, uid, gid int) (bool, error) {
	f, st, err := openRegular(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", p.path(), err)
	}
	defer f.Close()
	if st.Nlink != 1 || st.Size != int64(len(data)) {
		return false, nil
	}
	old, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
	if err != nil {
		return false, fmt.Errorf("write %s: read current file: %w", p.path(), err)
	}
	if !bytes.Equal(old, data) {
		return false, nil
	}
	if err := setOwnerMode(f, p.path(), mode, uid, gid); err != nil {
		return false, fmt.Errorf("write %s: %w", p.path(), err)
	}
	return true, nil
}

func setOwnerMode(f *os.File, path string, mode os.FileMode, uid, gid int) error {
	if uid != -1 || gid != -1 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("chown %s to %d:%d: %w", path, uid, gid, err)
		}
	}
	// After the chown, which clears set-id bits.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s to %#o: %w", path, mode, err)
	}
	return nil
}

// Pending is a file being written by Create: bytes go to a temporary file
// beside the target until Commit renames it into place. It is not safe for
// concurrent use.
type Pending struct {
	f        *os.File
	p        parent
	tmp      string
	old      string // WriteAll: a second name of the target it replaces, "" when none
	mode     os.FileMode
	uid, gid int
	finished bool
	target   string
}

// Create starts replacing path: it resolves path (a link as the package doc
// says), refuses an existing path that is not a regular file (*KindError),
// and creates an empty temporary file ".<name>.tmp-<random>" in the same
// directory, mode 0600. Write to it, then Commit, or Abort (always safe to
// defer: it does nothing after Commit). A full volume is a *NoSpaceError.
func Create(path string, mode os.FileMode, uid, gid int) (*Pending, error) {
	p, err := resolve(path, true, 0)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := replaceable(p); err != nil {
		p.close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	tmp := hiddenName(p.name, "tmp")
	fd, err := unix.Openat(p.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		p.close()
		return nil, NoSpace(p.dir, fmt.Errorf("write %s: create temporary file: %w", p.path(), err))
	}
	return &Pending{f: os.NewFile(uintptr(fd), filepath.Join(p.dir, tmp)), p: p, tmp: tmp,
		mode: mode, uid: uid, gid: gid, target: p.path()}, nil
}

// hiddenName is ".<name>.<what>-<random>": a name beside name that no one
// else picks.
func hiddenName(name, what string) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	return "." + name + "." + what + "-" + hex.EncodeToString(rnd[:])
}

// replaceable is nil when p's name is absent or a regular file.
func replaceable(p parent) error {
	var st unix.Stat_t
	err := unix.Fstatat(p.fd, p.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == unix.ENOENT:
		return nil
	case err != nil:
		return &fs.PathError{Op: "stat", Path: p.path(), Err: err}
	}
	if m := modeOf(&st); m.Type() != 0 {
		if m&fs.ModeSymlink != 0 {
			// resolve followed or refused every link at the last component;
			// one here was swapped in since.
			_, detail := trusted(p.fd)
			return &LinkError{Link: p.path(), Dir: p.dir, Detail: detail}
		}
		return &KindError{Path: p.path(), Kind: kindName(m)}
	}
	return nil
}

// Name is the temporary file's path (for example to leave it out of a
// backup that is written into it).
func (w *Pending) Name() string { return w.f.Name() }

// Target is the path the file will have after Commit (links resolved).
func (w *Pending) Target() string { return w.target }

// Write appends to the temporary file. A full volume is a *NoSpaceError;
// Abort then removes what was written.
func (w *Pending) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err != nil {
		return n, NoSpace(w.p.dir, fmt.Errorf("write %s: %w", w.target, err))
	}
	return n, nil
}

// Commit sets the mode and owner on the descriptor, syncs, closes, checks
// again that the target is absent or a regular file, renames the temporary
// file over it and syncs the directory. On error the temporary file is
// removed and the target is as it was (unless only the directory sync
// failed: then the new file is in place and the error says so).
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

// seal sets the temporary file's mode and owner on its descriptor, syncs and
// closes it.
func (w *Pending) seal() error {
	if err := setOwnerMode(w.f, w.f.Name(), w.mode, w.uid, w.gid); err != nil {
		_ = w.f.Close()
		return fmt.Errorf("write %s: %w", w.target, err)
	}
	if err := w.f.Sync(); err != nil {
		_ = w.f.Close()
		return NoSpace(w.p.dir, fmt.Errorf("write %s: fsync %s: %w", w.target, w.f.Name(), err))
	}
	if err := w.f.Close(); err != nil {
		return NoSpace(w.p.dir, fmt.Errorf("write %s: close %s: %w", w.target, w.f.Name(), err))
	}
	return nil
}

// keepOld gives the current target, if any, a second name (a hard link) that
// rollback can rename back.
func (w *Pending) keepOld() error {
	if err := replaceable(w.p); err != nil {
		return fmt.Errorf("write %s: %w", w.target, err)
	}
	old := hiddenName(w.p.name, "old")
	err := unix.Linkat(w.p.fd, w.p.name, w.p.fd, old, 0)
	switch {
	case err == unix.ENOENT:
		return nil
	case err != nil:
		return NoSpace(w.p.dir, fmt.Errorf("write %s: keep the current file as %s: %w", w.target, old, err))
	}
	w.old = old
	return nil
}

// install checks again that the target is absent or a regular file, renames
// the sealed temporary file over it and syncs the directory.
func (w *Pending) install() error {
	if err := replaceable(w.p); err != nil {
		return fmt.Errorf("write %s: %w", w.target, err)
	}
	if err := unix.Renameat(w.p.fd, w.tmp, w.p.fd, w.p.name); err != nil {
		return NoSpace(w.p.dir, fmt.Errorf("write %s: rename from %s: %w", w.target, w.tmp, err))
	}
	// The rename is durable only once the directory is synced. An O_PATH
	// descriptor cannot be synced; a directory this process may write but
	// not read cannot be opened for it, and is left to the next sync.
	if dfd, err := unix.Openat(w.p.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		serr := unix.Fsync(dfd)
		_ = unix.Close(dfd)
		if serr != nil {
			return fmt.Errorf("write %s: fsync directory %s: %w", w.target, w.p.dir, serr)
		}
	}
	return nil
}

// rollback undoes install: the kept file goes back, or the target goes when
// there was none.
func (w *Pending) rollback() error {
	var err error
	if w.old != "" {
		err = unix.Renameat(w.p.fd, w.old, w.p.fd, w.p.name)
	} else {
		err = unix.Unlinkat(w.p.fd, w.p.name, 0)
	}
	if err != nil {
		err = fmt.Errorf("write %s: put the previous file back: %w", w.target, err)
		if w.old != "" {
			err = fmt.Errorf("%w; it is kept as %s", err, filepath.Join(w.p.dir, w.old))
		}
	}
	w.old = "" // back in place, or kept for the operator: Abort leaves it alone
	return err
}

// finish ends a successful write: the kept name goes, the directory closes.
func (w *Pending) finish() {
	w.finished = true
	if w.old != "" {
		_ = unix.Unlinkat(w.p.fd, w.old, 0)
	}
	w.p.close()
}

// Abort removes the temporary file, leaving the target as it was. It does
// nothing after Commit or Abort.
func (w *Pending) Abort() {
	if w.finished {
		return
	}
	w.finished = true
	_ = w.f.Close() // ErrClosed after seal: harmless
	_ = unix.Unlinkat(w.p.fd, w.tmp, 0)
	if w.old != "" {
		_ = unix.Unlinkat(w.p.fd, w.old, 0)
	}
	w.p.close()
}

// SetOwnerMode sets the mode and owner (uid:gid, -1 keeps) of the regular
// file at path on its descriptor: a link is refused or followed as the
// package doc says, never chowned through by path. A file with several hard
// links is refused (ErrHardLinked): it may be another user's link to a file
// that is not theirs.
func SetOwnerMode(path string, mode os.FileMode, uid, gid int) error {
	p, err := resolve(path, true, 0)
	if err != nil {
		return err
	}
	defer p.close()
	f, st, err := openRegular(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if st.Nlink != 1 {
		return fmt.Errorf("set owner of %s: %d hard links: %w; remove the other names or the file", p.path(), st.Nlink, ErrHardLinked)
	}
	return setOwnerMode(f, p.path(), mode, uid, gid)
}

// EnsureFile makes path a regular file with the given mode, owned by
// uid:gid (-1 keeps): an absent one is created empty (O_EXCL: a file that
// appears meanwhile is never replaced), an existing one keeps its content and
// gets the mode and owner on its descriptor, as SetOwnerMode does (a link is
// refused or followed as the package doc says, a file with several hard
// links is refused). It is for files another program fills but must find
// private, such as a database.
func EnsureFile(path string, mode os.FileMode, uid, gid int) error {
	p, err := resolve(path, true, 0)
	if err != nil {
		return err
	}
	defer p.close()
	fd, err := unix.Openat(p.fd, p.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	switch {
	case err == unix.EEXIST:
		return SetOwnerMode(path, mode, uid, gid)
	case err != nil:
		return NoSpace(p.dir, fmt.Errorf("create %s: %w", p.path(), err))
	}
	f := os.NewFile(uintptr(fd), p.path())
	defer f.Close()
	if err := setOwnerMode(f, p.path(), mode, uid, gid); err != nil {
		_ = unix.Unlinkat(p.fd, p.name, 0)
		return err
	}
	return nil
}

// MkdirOwned makes path a directory with the given mode, owned by uid:gid
// (-1 keeps), creating it and its missing parents (parents with mode 0755,
// owned by this process). An existing directory gets the mode and owner,
// except that a non-root caller asking for no owner change accepts an
// existing directory it may write in but not chmod (a volume's root owned by
// root with Kubernetes' fsGroup); an existing path of another type is
// refused (*KindError). Mode and owner are
// set on the directory's descriptor: a link planted at the last component
// in a directory another user can change is refused, never chowned through.
func MkdirOwned(path string, mode os.FileMode, uid, gid int) error {
	p, err := resolve(path, true, 0o755)
	if err != nil {
		return fmt.Errorf("create directory %s: %w", path, err)
	}
	defer p.close()
	existed := false
	if err := unix.Mkdirat(p.fd, p.name, uint32(mode.Perm())); err != nil {
		if err != unix.EEXIST {
			return NoSpace(p.dir, fmt.Errorf("create directory %s: %w", p.path(), err))
		}
		existed = true
	}
	fd, err := unix.Openat(p.fd, p.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		var st unix.Stat_t
		if serr := unix.Fstatat(p.fd, p.name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				_, detail := trusted(p.fd)
				return fmt.Errorf("create directory %s: %w", path, &LinkError{Link: p.path(), Dir: p.dir, Detail: detail})
			}
			return fmt.Errorf("create directory %s: %w", path, &KindError{Path: p.path(), Kind: kindName(modeOf(&st))})
		}
		return fmt.Errorf("open directory %s: %w", p.path(), err)
	}
	f := os.NewFile(uintptr(fd), p.path())
	defer f.Close()
	err = setOwnerMode(f, p.path(), mode, uid, gid)
	if errors.Is(err, unix.EPERM) && existed && uid == -1 && gid == -1 && os.Geteuid() != 0 &&
		unix.Faccessat(p.fd, p.name, unix.W_OK|unix.X_OK, unix.AT_EACCESS) == nil {
		// A volume's root that another user owns but this non-root process
		// may write in (Kubernetes fsGroup, a --user container on a bind
		// mount): usable as it is, though its mode is not ours to set.
		return nil
	}
	return err
}

// Dir is a directory resolved once, as the package doc says, for reading
// many regular files in it without resolving the whole path again for each
// (one open per file instead of one per path component). Close it when done.
type Dir struct {
	fd   int
	path string
}

// OpenDir resolves the directory at path as Open resolves a file (a link is
// followed only from a trusted directory). The caller closes the Dir.
func OpenDir(path string) (*Dir, error) {
	p, err := resolve(path, true, 0)
	if err != nil {
		return nil, err
	}
	defer p.close()
	fd, err := unix.Openat(p.fd, p.name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p.path(), Err: err}
	}
	return &Dir{fd: fd, path: p.path()}, nil
}

// ReadFile is ReadFile of the file name (one path component) in d: the same
// checks, cap and errors, with the path in them d's path joined with name. A
// link there is resolved by the package's rules from d's path, as ReadFile
// would.
func (d *Dir) ReadFile(name string, opts ReadOptions) ([]byte, error) {
	path := filepath.Join(d.path, name)
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("read %s: %q is not a file name in %s", path, name, d.path)
	}
	f, _, err := openRegular(parent{fd: d.fd, dir: d.path, name: name})
	var kind *KindError
	if errors.As(err, &kind) && kind.Kind == "symbolic link" || errors.Is(err, unix.ELOOP) {
		return ReadFile(path, opts) // a link (or one swapped in meanwhile): the trust rules decide
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCapped(f, path, opts)
}

// Path is the resolved path of d.
func (d *Dir) Path() string { return d.path }

// Close releases d.
func (d *Dir) Close() error { return unix.Close(d.fd) }
