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
)

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
	limit := opts.MaxBytes
	if limit == 0 {
		limit = DefaultMaxBytes
	}
	if limit > 0 {
		if fi, err := f.Stat(); err == nil && fi.Size() > limit {
			return nil, fmt.Errorf("read %s: %d bytes, more than the %d allowed: %w", path, fi.Size(), limit, ErrTooLarge)
		}
	}
	var r io.Reader = f
	if limit > 0 {
		r = io.LimitReader(f, limit+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
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
