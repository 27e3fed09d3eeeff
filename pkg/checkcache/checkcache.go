// Package checkcache remembers which config files passed the config check
// (`luac -p` and `prosodyctl check config`), so that a restart on a config
// already checked, by the same checkers, is not checked again: that check is
// most of the entrypoint's time to ready.
//
// A verdict is a key: the SHA-256 of everything the check's outcome depends
// on (Key). Only a pass is recorded, and a key is true for ever, whoever
// replays it: a list of keys cannot say that another input passed.
//
// Where the verdicts live, and why there: one file, FileName, at the top of
// the data directory (PROSODY_DATA_DIR), because that is the volume that
// survives a container restart; the runtime directory is root's but is often a
// tmpfs (compose/production.yml), gone at each restart. The data directory
// belongs to prosody, so the file is trusted only if prosody could not have
// written it: Lookup opens it without following a link planted there
// (atomicfile.Open) and accepts only a regular file owned by this process's
// user (root), with no group or other permission bits and one name (a hard
// link is refused). prosody can delete it (the next start checks again) but
// not write one root owns. Record never rewrites the file in place, where
// prosody could have kept it open for writing before it became root's: it
// writes a new file and renames it over the old one (atomicfile.Create).
package checkcache

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// FileName is the verdict file's name in the data directory. Backups leave it
// out: it is root's, and a restored one would only be checked again.
const FileName = ".prosody-pfe-checked"

// MaxEntries is how many keys the file keeps, the most recent first.
const MaxEntries = 32

const header = "prosody-pfe config check passes v1"

// Key accumulates the inputs of one check's verdict; Sum is the cache key.
// Each Add is framed by its label and length, so two inputs never run together.
type Key struct {
	b bytes.Buffer
}

// Add adds one named input.
func (k *Key) Add(label string, data []byte) {
	fmt.Fprintf(&k.b, "%s %d\n", label, len(data))
	k.b.Write(data)
	k.b.WriteByte('\n')
}

// AddString adds one named text input.
func (k *Key) AddString(label, s string) { k.Add(label, []byte(s)) }

// Sum returns the key: the hex SHA-256 of every input added.
func (k *Key) Sum() string {
	sum := sha256.Sum256(k.b.Bytes())
	return hex.EncodeToString(sum[:])
}

// AddFiles adds the identity of each file (its own and, for a link, its
// target's): device, inode, size, mode, and modification and change times in
// nanoseconds; an absent file is added as absent. The change time is set by
// the kernel on every write, rename or chmod and cannot be set back by a
// user, so a program replaced by a package upgrade or a new image has a new
// identity even with the same size and modification time.
func (k *Key) AddFiles(paths ...string) {
	for _, p := range paths {
		k.AddString("file", p+" "+identity(p))
	}
}

// Lookup reports whether key is recorded in the verdict file at path. why says
// why not, for the debug log: no file yet, an untrusted file (with the reason)
// or no such key.
func Lookup(path, key string) (hit bool, why string) {
	keys, err := read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, "no verdicts recorded yet"
	case err != nil:
		return false, err.Error()
	case slices.Contains(keys, key):
		return true, ""
	default:
		return false, "config or checkers not checked before"
	}
}

// Record adds key as a pass to the verdict file at path, keeping the
// MaxEntries most recent; an untrusted file (see Lookup) is removed first. Its error says what
// failed; a start goes on without the record (the next one checks again).
func Record(path, key string) error {
	keys, err := read(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Untrusted (a link, prosody's file) or unreadable: dropped. Unlink
		// removes a link itself, never its target.
		keys = nil
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("record the config check: remove the untrusted %s: %w", path, err)
		}
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == key })
	keys = append([]string{key}, keys...)
	if len(keys) > MaxEntries {
		keys = keys[:MaxEntries]
	}
	data := header + "\n" + strings.Join(keys, "\n") + "\n"
	w, err := atomicfile.Create(path, 0o600, os.Geteuid(), os.Getegid())
	if err != nil {
		return fmt.Errorf("record the config check: %w", err)
	}
	defer w.Abort()
	if _, err := io.WriteString(w, data); err != nil {
		return fmt.Errorf("record the config check in %s: %w", path, err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("record the config check in %s: %w", path, err)
	}
	return nil
}

// read returns the keys of the verdict file at path when it is trusted (see
// the package doc), else an error that says why not.
func read(path string) ([]string, error) {
	f, err := atomicfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := trusted(fi); err != nil {
		return nil, fmt.Errorf("%s ignored: %w", path, err)
	}
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	if !sc.Scan() || sc.Text() != header {
		return nil, fmt.Errorf("%s ignored: not a verdict file of this version", path)
	}
	var keys []string
	for sc.Scan() {
		k := sc.Text()
		if len(k) != sha256.Size*2 {
			return nil, fmt.Errorf("%s ignored: malformed entry", path)
		}
		keys = append(keys, k)
	}
	return keys, sc.Err()
}

// trusted accepts a file only its owner can have written, when that owner is
// this process's user.
func trusted(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("cannot read its owner")
	}
	switch {
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("owned by uid %d, not %d", st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("mode %04o: not private to its owner", fi.Mode().Perm())
	case uint64(st.Nlink) != 1:
		return fmt.Errorf("%d hard links", st.Nlink)
	}
	return nil
}

func identity(path string) string {
	var b strings.Builder
	for _, stat := range []func(string) (fs.FileInfo, error){os.Lstat, os.Stat} {
		fi, err := stat(path)
		if err != nil {
			b.WriteString(" absent")
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			fmt.Fprintf(&b, " %d %v %d", fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
			continue
		}
		fmt.Fprintf(&b, " %d:%d %d %o %d %d", uint64(st.Dev), uint64(st.Ino), st.Size, st.Mode, fi.ModTime().UnixNano(), changeTime(st))
	}
	return b.String()
}
