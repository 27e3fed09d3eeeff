// Package atomicfile is the one place where the entrypoint writes, reads and
// re-owns files, safely for a root process working in directories that an
// unprivileged user (prosody) can change.
//
// Writing: Write (and Create for a stream) puts bytes in a temporary file in
// the same directory, sets its mode and owner on the descriptor (fchmod,
// fchown), syncs it, renames it over the target and syncs the directory: a
// reader sees the old file or the new one, never a mix. It reports whether
// the bytes changed. It refuses to replace anything that is not a regular file
// (a device, a FIFO, a directory, a socket): `--out /dev/null` must not turn a
// device node into a regular file.
//
// Reading: ReadFile and Open open non-blocking and without following a link
// at the last component, check with fstat that the file is regular, and cap
// its size, so a FIFO or a device is refused at once instead of hanging.
//
// Symbolic links: every path is resolved one component at a time from "/",
// and a symbolic link is followed only when the directory that holds it is
// trusted: owned by root or by this process's user, and writable by neither
// group (unless the group is root's) nor others. A link planted by another
// user (prosody replacing $DATA/secrets/x, or $RUNTIME/next, by a link to a
// root file) is refused with an error naming the link and its directory; the
// links Kubernetes puts in Secret and ConfigMap volumes (root-owned,
// read-only) are followed. Every later step works on descriptors of the
// resolved directory, so a link swapped in after the check is not followed
// either (the kernel refuses it: O_NOFOLLOW, openat, renameat).
//
// The rules are the same for Linux and other systems; on systems other than
// Linux the checks are made on paths (racy, best effort).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Stdout is the path that, for the *OrStdout helpers, means standard output.
// The other functions of this package treat "-" as an ordinary file name.
const Stdout = "-"

// DefaultMaxBytes is the size cap of ReadFile when ReadOptions.MaxBytes is 0.
const DefaultMaxBytes = 16 << 20

var (
	// ErrNotRegular is matched (errors.Is) by every refusal of a file that is
	// not a regular file: a directory, FIFO, device, socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrUnsafeLink is matched by every refusal to follow a symbolic link that
	// sits in a directory another user can change.
	ErrUnsafeLink = errors.New("symbolic link in a directory another user can change")
	// ErrTooLarge is matched when a file is over the size cap.
	ErrTooLarge = errors.New("file too large")
	// ErrHardLinked is matched when a file whose owner or mode would change
	// has more than one name (a hard link planted by another user).
	ErrHardLinked = errors.New("file has several hard links")
	// ErrNoSpace is matched by every write of this package that failed
	// because the volume is full or the user's disk quota is used up
	// (ENOSPC, EDQUOT): a *NoSpaceError. Nothing half-written is left by
	// such a failure: the temporary file is removed, the target is as it was.
	ErrNoSpace = errors.New("no space left on the volume")
)

// NoSpaceError says that a write under Dir failed for lack of space.
type NoSpaceError struct {
	Dir string
	Err error // what failed, with the system's error (ENOSPC or EDQUOT)
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("%v: the volume holding %s is full; free space on it or give it a larger volume", e.Err, e.Dir)
}

// Is makes errors.Is(err, ErrNoSpace) true.
func (e *NoSpaceError) Is(target error) bool { return target == ErrNoSpace }

// Unwrap returns the error of the failed write.
func (e *NoSpaceError) Unwrap() error { return e.Err }

// IsNoSpace reports whether err says that a volume is full: it matches
// ErrNoSpace, or has ENOSPC or EDQUOT from a system call in its chain (for
// writers that do not go through this package).
func IsNoSpace(err error) bool {
	return errors.Is(err, ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// NoSpace returns err as a *NoSpaceError naming dir when it says that the
// volume is full (IsNoSpace) and is not one already; any other err, nil
// included, is returned as it is.
func NoSpace(dir string, err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) || !IsNoSpace(err) {
		return err
	}
	return &NoSpaceError{Dir: dir, Err: err}
}

// KindError says that path is not a regular file, and what it is.
type KindError struct {
	Path string
	Kind string // "directory", "named pipe (FIFO)", "character device", ...
}

func (e *KindError) Error() string {
	return fmt.Sprintf("%s is a %s, not a regular file", e.Path, e.Kind)
}

// Is makes errors.Is(err, ErrNotRegular) true.
func (e *KindError) Is(target error) bool { return target == ErrNotRegular }

// LinkError says that Link is a symbolic link in Dir, a directory that a user
// other than root (and this process's user) can change, so it was not followed.
type LinkError struct {
	Link   string
	Dir    string
	Detail string // the directory's owner and mode, e.g. "owner 102:105, mode 0750"
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("refusing to follow symbolic link %s: its directory %s (%s) can be changed by a user other than root; point at the file itself",
		e.Link, e.Dir, e.Detail)
}

// Is makes errors.Is(err, ErrUnsafeLink) true.
func (e *LinkError) Is(target error) bool { return target == ErrUnsafeLink }

// kindName names a file type for a KindError.
func kindName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	default:
		return "special file"
	}
}

// ReadOptions tune ReadFile.
type ReadOptions struct {
	// MaxBytes refuses a file larger than this; 0 means DefaultMaxBytes, a
	// negative value means no cap.
	MaxBytes int64
}

// ReadFile returns the content of the regular file at path, resolved as the
// package doc says (no link followed in a directory another user can change).
// A FIFO, device, socket or directory is refused at once (*KindError, never
// a block), as is a file over the cap (ErrTooLarge). Errors name the path.
func ReadFile(path string, opts ReadOptions) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCapped(f, path, opts)
}

// readCapped reads all of f, the regular file at path, within opts.MaxBytes.
func readCapped(f *os.File, path string, opts ReadOptions) ([]byte, error) {
	limit := opts.MaxBytes
	if limit == 0 {
		limit = DefaultMaxBytes
	}
	size := int64(0)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	if limit > 0 && size > limit {
		return nil, fmt.Errorf("read %s: %d bytes, more than the %d allowed: %w", path, size, limit, ErrTooLarge)
	}
	var r io.Reader = f
	if limit > 0 {
		r = io.LimitReader(f, limit+1)
	}
	// Sized from fstat, as os.ReadFile is: one read and one to see the end,
	// for a file that does not grow meanwhile.
	b := make([]byte, 0, size+512)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
	if limit > 0 && int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: more than the %d bytes allowed: %w", path, limit, ErrTooLarge)
	}
	return b, nil
}

// WriteOrStdout is Write, except that path Stdout ("-") writes data to
// stdout (changed is then true; mode and owner do not apply). Verbs that take
// an --out flag use it so that "-" means standard output, as users expect.
func WriteOrStdout(path string, stdout io.Writer, data []byte, mode os.FileMode, uid, gid int) (changed bool, err error) {
	if path == Stdout {
		if _, err := stdout.Write(data); err != nil {
			return false, fmt.Errorf("write standard output: %w", err)
		}
		return true, nil
	}
	return Write(path, data, mode, uid, gid)
}

// File is one file of WriteAll: its path, content and mode.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// WriteAll makes every file hold its Data, owned by uid:gid (-1 keeps), all
// or nothing: a key and its certificate, never one without the other. Every
// file is first written and synced to a temporary file beside its target (a
// full volume fails here: every temporary file is removed and no target has
// changed); then each existing target keeps a second name (a hard link: no
// data is copied) and the temporary files are renamed over the targets in
// order. If a rename fails, the targets already replaced get their previous
// file back (or are removed when there was none). Paths are resolved and
// non-regular targets refused as Create does. Unlike Write, the files are
// rewritten even when their bytes are the same.
func WriteAll(files []File, uid, gid int) error {
	ws := make([]*Pending, 0, len(files))
	defer func() {
		for _, w := range ws {
			w.Abort() // does nothing after a success
		}
	}()
	for _, f := range files {
		w, err := Create(f.Path, f.Mode, uid, gid)
		if err != nil {
			return err
		}
		ws = append(ws, w)
		if _, err := w.Write(f.Data); err != nil {
			return err
		}
	}
	for _, w := range ws {
		if err := w.seal(); err != nil {
			return err
		}
	}
	for _, w := range ws {
		if err := w.keepOld(); err != nil {
			return err
		}
	}
	for i, w := range ws {
		if err := w.install(); err != nil {
			var errs []error
			for _, done := range ws[:i] {
				if rerr := done.rollback(); rerr != nil {
					errs = append(errs, rerr)
				}
			}
			return errors.Join(append([]error{err}, errs...)...)
		}
	}
	for _, w := range ws {
		w.finish()
	}
	return nil
}
