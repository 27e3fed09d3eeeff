package backup

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// RestoreConfig is where and how Restore puts an archive back.
type RestoreConfig struct {
	// DataDir is the data directory to restore into (PROSODY_DATA_DIR). Required.
	// It is created when missing.
	DataDir string
	// AdminSocket is Prosody's admin socket; when it accepts a connection,
	// Prosody is running on this data and Restore refuses. "" skips the check.
	AdminSocket string
	// C2SAddr is where a server on this data would answer clients; when it
	// accepts a connection, Restore refuses too. "" skips the check.
	C2SAddr string
	// UID and GID own every restored file and directory; -1 keeps the
	// restoring process's identity.
	UID, GID int
	// Now is the clock naming the aside directory; nil means time.Now.
	Now func() time.Time
	// Logger; nil means none.
	Logger *zap.Logger
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Manifest *Manifest
	// Files is the number of data files restored.
	Files int
	// Aside is where the previous contents of the data directory were moved:
	// <DataDir>.pre-restore-<time>, or <DataDir>/.pre-restore-<time> when the
	// data directory is a mount point (a rename cannot leave the volume). ""
	// when the data directory was empty.
	Aside string
	// HasPostgresDump is true when the archive holds postgres.sql, which
	// Restore does not load: feed it to psql (docs/operations.md).
	HasPostgresDump bool
}

// ErrRunning is returned (wrapped) when Prosody answers on the admin socket.
var ErrRunning = errors.New("prosody is running on this data directory")

// Restore verifies the archive at archivePath and, only when every checksum
// matches, replaces the contents of cfg.DataDir with the archive's data
// files. Nothing is deleted: the previous contents are moved aside (see
// RestoreResult.Aside). A verification failure leaves the data directory as
// it was.
//
// The archive is read twice. The first pass verifies all of it and writes
// nothing; then an archive whose data files need more room than the data
// volume has free is refused (matching atomicfile.ErrNoSpace). The second
// pass extracts into a staging directory inside cfg.DataDir (same volume),
// holding every member to the size and checksum the first pass verified as
// it streams: a member larger than declared is refused before it is
// written, so a crafted or swapped archive cannot fill the volume. Only a
// complete extraction is renamed into place; any failure removes the
// staging directory. A SQLite database is restored with mode 0600.
func Restore(ctx context.Context, cfg RestoreConfig, archivePath string) (*RestoreResult, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("restore: data directory is empty: set PROSODY_DATA_DIR")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.AdminSocket != "" {
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(ctx, "unix", cfg.AdminSocket); err == nil {
			c.Close()
			return nil, fmt.Errorf("restore into %s: %w (its admin socket %s answers): stop the server first, then restore", cfg.DataDir, ErrRunning, cfg.AdminSocket)
		}
	}
	if cfg.C2SAddr != "" {
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(ctx, "tcp", cfg.C2SAddr); err == nil {
			c.Close()
			return nil, fmt.Errorf("restore into %s: %w (something listens on %s, PROSODY_C2S_PORT): stop the server first, then restore", cfg.DataDir, ErrRunning, cfg.C2SAddr)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("restore: create data directory %s: %w", cfg.DataDir, err)
	}
	// First pass: the whole archive is checked against its manifest, with
	// nothing written. The manifest is the archive's last member, so only
	// now are the sizes known that the second pass holds each member to.
	f, err := os.Open(archivePath)
	if err != nil {
		return nil, fmt.Errorf("restore: open archive: %w", err)
	}
	defer f.Close()
	m, hasPG, err := verify(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w; the data directory was not touched", archivePath, err)
	}
	if err := fits(cfg.DataDir, m); err != nil {
		return nil, fmt.Errorf("restore %s: %w; the data directory was not touched", archivePath, err)
	}

	// Second pass: extract into a staging directory on the data volume
	// (renamed into place at the end), each member held to its verified
	// size and checksum while it streams.
	stamp := cfg.Now().UTC().Format("20060102T150405Z")
	staging := filepath.Join(cfg.DataDir, ".restore-"+stamp)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return nil, atomicfile.NoSpace(cfg.DataDir, fmt.Errorf("restore: create staging directory %s: %w", staging, err))
	}
	defer os.RemoveAll(staging)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("restore: rewind archive: %w", err)
	}
	if err := unpack(bufio.NewReader(f), m, staging, cfg.UID, cfg.GID); err != nil {
		return nil, atomicfile.NoSpace(cfg.DataDir, fmt.Errorf("restore %s: %w; the data directory was not touched", archivePath, err))
	}
	res := &RestoreResult{Manifest: m, HasPostgresDump: hasPG}
	for _, file := range m.Files {
		if strings.HasPrefix(file.Path, dataPrefix) {
			res.Files++
		}
	}

	aside, err := moveAside(cfg.DataDir, staging, stamp)
	if err != nil {
		return nil, fmt.Errorf("restore: move the current contents of %s aside: %w", cfg.DataDir, err)
	}
	res.Aside = aside
	entries, err := os.ReadDir(staging)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(staging, e.Name()), filepath.Join(cfg.DataDir, e.Name())); err != nil {
			return nil, fmt.Errorf("restore: put %s in place (previous contents are in %s): %w", e.Name(), aside, err)
		}
	}
	if cfg.UID >= 0 {
		if err := os.Chown(cfg.DataDir, cfg.UID, cfg.GID); err != nil {
			return nil, fmt.Errorf("restore: give %s to uid %d: %w", cfg.DataDir, cfg.UID, err)
		}
	}
	cfg.Logger.Info("restored", zap.String("archive", archivePath), zap.Int("files", res.Files),
		zap.String("aside", aside), zap.Time("created", m.Created))
	return res, nil
}

// Verify reads a whole archive and checks it: a manifest of a known format,
// every file present once with its size and SHA-256, nothing unlisted, and
// SHA256SUMS agreeing. It writes nothing.
func Verify(r io.Reader) (*Manifest, error) {
	m, _, err := verify(r)
	return m, err
}

// maxMetaBytes caps manifest.json and SHA256SUMS, which are read into memory.
const maxMetaBytes = 64 << 20

// verify is Verify; it also says whether the archive holds postgres.sql.
func verify(r io.Reader) (*Manifest, bool, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, false, fmt.Errorf("not a gzip archive: %w", err)
	}
	tr := tar.NewReader(gz)
	got := map[string]File{}
	var manifestBytes, sums []byte
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("read archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, false, fmt.Errorf("archive member %q is not a regular file", hdr.Name)
		}
		switch name := hdr.Name; {
		case name == manifestName || name == sumsName:
			if hdr.Size > maxMetaBytes {
				return nil, false, fmt.Errorf("archive member %s is %d bytes, more than the %d allowed", name, hdr.Size, maxMetaBytes)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, false, fmt.Errorf("read %s: %w", name, err)
			}
			if name == manifestName {
				manifestBytes = b
			} else {
				sums = b
			}
		case name == postgresName || strings.HasPrefix(name, dataPrefix):
			if name != postgresName {
				if _, err := memberPath(name); err != nil {
					return nil, false, err
				}
			}
			if _, dup := got[name]; dup {
				return nil, false, fmt.Errorf("archive member %q appears twice", name)
			}
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return nil, false, fmt.Errorf("read %s: %w", name, err)
			}
			got[name] = File{Path: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
		default:
			return nil, false, fmt.Errorf("archive member %q is not part of the backup format", hdr.Name)
		}
	}
	if manifestBytes == nil {
		return nil, false, fmt.Errorf("%s is missing: not an entrypoint backup", manifestName)
	}
	var m Manifest
	if err := json.Unmarshal(manifestBytes, &m); err != nil {
		return nil, false, fmt.Errorf("decode %s: %w", manifestName, err)
	}
	if m.Format != FormatVersion {
		return nil, false, fmt.Errorf("%s: format %d, this entrypoint reads format %d", manifestName, m.Format, FormatVersion)
	}
	want := map[string]File{}
	for _, f := range m.Files {
		if _, dup := want[f.Path]; dup {
			return nil, false, fmt.Errorf("%s lists %s twice", manifestName, f.Path)
		}
		want[f.Path] = f
		g, ok := got[f.Path]
		switch {
		case !ok:
			return nil, false, fmt.Errorf("%s is listed in %s but missing from the archive", f.Path, manifestName)
		case g.SHA256 != f.SHA256 || g.Size != f.Size:
			return nil, false, fmt.Errorf("checksum mismatch for %s: archive has sha256 %s (%d bytes), manifest says %s (%d bytes)",
				f.Path, g.SHA256, g.Size, f.SHA256, f.Size)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			return nil, false, fmt.Errorf("%s is in the archive but not in %s", name, manifestName)
		}
	}
	if err := checkSums(sums, m, manifestBytes); err != nil {
		return nil, false, err
	}
	_, hasPG := got[postgresName]
	return &m, hasPG, nil
}

// memberPath is a data member's path below the data directory, refused when
// it could leave it.
func memberPath(name string) (string, error) {
	rel := strings.TrimPrefix(name, dataPrefix)
	if clean := path.Clean(rel); clean != rel || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
		return "", fmt.Errorf("archive member %q has an unsafe path", name)
	}
	return rel, nil
}

// unpack writes the data files of an archive that verify accepted as m into
// dir. It checks the archive again as it streams (it may have changed since):
// a member not in m, or whose size is not the size m declares, is refused
// before a byte of it is written; a member is never written past its
// declared size, and its SHA-256 is checked at its end.
func unpack(r io.Reader, m *Manifest, dir string, uid, gid int) error {
	want := map[string]File{}
	for _, f := range m.Files {
		want[f.Path] = f
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip archive: %w", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := hdr.Name
		if name == manifestName || name == sumsName || name == postgresName {
			continue // verified in the first pass, not written
		}
		f, ok := want[name]
		switch {
		case !ok || hdr.Typeflag != tar.TypeReg || !strings.HasPrefix(name, dataPrefix):
			return fmt.Errorf("archive member %q is not in %s: the archive changed while it was restored", name, manifestName)
		case seen[name]:
			return fmt.Errorf("archive member %q appears twice", name)
		case hdr.Size != f.Size:
			return fmt.Errorf("archive member %q is %d bytes, %s declares %d: refused before writing it", name, hdr.Size, manifestName, f.Size)
		}
		seen[name] = true
		rel, err := memberPath(name)
		if err != nil {
			return err
		}
		if err := writeMember(tr, f, dir, rel, uid, gid); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
	}
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, dataPrefix) && !seen[f.Path] {
			return fmt.Errorf("%s is listed in %s but missing from the archive", f.Path, manifestName)
		}
	}
	return nil
}

// fits refuses an archive whose data files need more room than the volume of
// dataDir has free (each file rounded up to whole blocks). Where the free
// space cannot be told, it lets the restore try: unpack never writes more
// than the verified sizes, and removes what it wrote on failure.
func fits(dataDir string, m *Manifest) error {
	free, block, ok := freeSpace(dataDir)
	if !ok {
		return nil
	}
	var need int64
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, dataPrefix) {
			need += (f.Size + block - 1) / block * block
		}
	}
	if need > free {
		return fmt.Errorf("its data files need %d bytes and the volume holding %s has %d free: %w; free space on it or give it a larger volume",
			need, dataDir, free, atomicfile.ErrNoSpace)
	}
	return nil
}

func checkSums(sums []byte, m Manifest, manifestBytes []byte) error {
	if sums == nil {
		return fmt.Errorf("%s is missing from the archive", sumsName)
	}
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			return fmt.Errorf("%s: malformed line %q", sumsName, line)
		}
		listed[name] = sum
	}
	mh := sha256.Sum256(manifestBytes)
	if listed[manifestName] != hex.EncodeToString(mh[:]) {
		return fmt.Errorf("checksum mismatch for %s (per %s)", manifestName, sumsName)
	}
	for _, f := range m.Files {
		if listed[f.Path] != f.SHA256 {
			return fmt.Errorf("%s and %s disagree about %s", sumsName, manifestName, f.Path)
		}
	}
	return nil
}

// sqliteHeader starts every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// writeMember writes the member f, whose size and checksum verify accepted,
// to dir/rel, reading at most one byte more than f.Size. A SQLite database
// is written 0600 whatever mode the archive gives it (archives made before
// this rule carry 0644): it holds every account, roster and message.
func writeMember(tr io.Reader, f File, dir, rel string, uid, gid int) error {
	dst := filepath.Join(dir, filepath.FromSlash(rel))
	if err := mkdirAllOwned(dir, filepath.Dir(dst), uid, gid); err != nil {
		return err
	}
	mode, err := strconv.ParseUint(strings.TrimPrefix(f.Mode, "0"), 8, 32)
	if err != nil || f.Mode == "" {
		mode = 0o600
	}
	br := bufio.NewReader(io.LimitReader(tr, f.Size+1))
	if head, _ := br.Peek(len(sqliteHeader)); string(head) == sqliteHeader {
		mode = 0o600
	}
	// Private while it is written; its own mode once it is whole and owned.
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), br)
	if err != nil {
		return err
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("the archive changed while it was restored: %d bytes with another checksum, %s declares %d", n, manifestName, f.Size)
	}
	if uid >= 0 {
		if err := out.Chown(uid, gid); err != nil {
			return err
		}
	}
	// After the chown (which clears set-id bits), and past the umask.
	if err := out.Chmod(os.FileMode(mode).Perm()); err != nil {
		return err
	}
	return out.Sync()
}

// mkdirAllOwned creates dir and its parents below root, owned by uid:gid.
func mkdirAllOwned(root, dir string, uid, gid int) error {
	if dir == root {
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := mkdirAllOwned(root, filepath.Dir(dir), uid, gid); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if uid >= 0 {
		return os.Chown(dir, uid, gid)
	}
	return nil
}

// moveAside moves every entry of dataDir except skip into a new directory
// beside dataDir, or inside it when a rename cannot leave it (a mount point).
// It returns that directory, or "" when there was nothing to move.
func moveAside(dataDir, skip, stamp string) (string, error) {
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return "", err
	}
	var move []string
	for _, e := range entries {
		if p := filepath.Join(dataDir, e.Name()); p != skip && !strings.HasPrefix(e.Name(), ".pre-restore-") {
			move = append(move, e.Name())
		}
	}
	if len(move) == 0 {
		return "", nil
	}
	aside := filepath.Clean(dataDir) + ".pre-restore-" + stamp
	if err := os.Mkdir(aside, 0o700); err != nil || os.Rename(filepath.Join(dataDir, move[0]), filepath.Join(aside, move[0])) != nil {
		if err == nil {
			os.Remove(aside) // empty: the rename failed
		}
		aside = filepath.Join(dataDir, ".pre-restore-"+stamp)
		if err := os.Mkdir(aside, 0o700); err != nil {
			return "", err
		}
	} else {
		move = move[1:]
	}
	for _, name := range move {
		if err := os.Rename(filepath.Join(dataDir, name), filepath.Join(aside, name)); err != nil {
			return aside, err
		}
	}
	return aside, nil
}

// WriteText tells a person what Restore did from file into dataDir, and
// what is left to do; storage is the environment's PROSODY_STORAGE.
func (r *RestoreResult) WriteText(w io.Writer, file, dataDir, storage string) {
	fmt.Fprintf(w, "restored %d files from %s (made %s, storage %s) into %s\n", r.Files, file,
		r.Manifest.Created.Format(time.RFC3339), r.Manifest.Storage, dataDir)
	if r.Aside != "" {
		fmt.Fprintf(w, "the previous contents are in %s\n", r.Aside)
	}
	if r.HasPostgresDump {
		fmt.Fprintf(w, "the archive holds postgres.sql: load it with psql (docs/operations.md)\n")
	}
	if r.Manifest.Storage != storage {
		fmt.Fprintf(w, "note: the backup was made with PROSODY_STORAGE=%s, this environment says %s: the next start migrates it\n",
			r.Manifest.Storage, storage)
	}
}
