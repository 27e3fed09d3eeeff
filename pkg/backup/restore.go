package backup

import (
	"archive/tar"
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
)

// RestoreConfig is where and how Restore puts an archive back.
type RestoreConfig struct {
	// DataDir is the data directory to restore into (PROSODY_DATA_DIR). Required.
	// It is created when missing.
	DataDir string
	// AdminSocket is Prosody's admin socket; when it accepts a connection,
	// Prosody is running on this data and Restore refuses. "" skips the check.
	AdminSocket string
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
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("restore: create data directory %s: %w", cfg.DataDir, err)
	}
	stamp := cfg.Now().UTC().Format("20060102T150405Z")
	staging := filepath.Join(cfg.DataDir, ".restore-"+stamp)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return nil, fmt.Errorf("restore: create staging directory %s: %w", staging, err)
	}
	defer os.RemoveAll(staging)

	f, err := os.Open(archivePath)
	if err != nil {
		return nil, fmt.Errorf("restore: open archive: %w", err)
	}
	defer f.Close()
	m, hasPG, err := extract(f, staging, cfg.UID, cfg.GID)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w; the data directory was not touched", archivePath, err)
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
// every file present with its size and SHA-256, nothing unlisted, and
// SHA256SUMS agreeing. It writes nothing.
func Verify(r io.Reader) (*Manifest, error) {
	m, _, err := extract(r, "", -1, -1)
	return m, err
}

// extract reads the archive, writes data files under dir (when dir is not
// ""), and verifies everything against the manifest.
func extract(r io.Reader, dir string, uid, gid int) (*Manifest, bool, error) {
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
		case name == manifestName:
			if manifestBytes, err = io.ReadAll(io.LimitReader(tr, 64<<20)); err != nil {
				return nil, false, fmt.Errorf("read %s: %w", name, err)
			}
		case name == sumsName:
			if sums, err = io.ReadAll(io.LimitReader(tr, 64<<20)); err != nil {
				return nil, false, fmt.Errorf("read %s: %w", name, err)
			}
		case name == postgresName || strings.HasPrefix(name, dataPrefix):
			rel := strings.TrimPrefix(name, dataPrefix)
			if name == postgresName || dir == "" {
				rel = "" // hashed, not written
			} else if clean := path.Clean(rel); clean != rel || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
				return nil, false, fmt.Errorf("archive member %q has an unsafe path", name)
			}
			file, err := copyMember(tr, hdr, dir, rel, uid, gid)
			if err != nil {
				return nil, false, fmt.Errorf("extract %s: %w", name, err)
			}
			got[name] = file
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

// copyMember hashes one member and, when rel is not "", writes it to dir/rel.
func copyMember(tr *tar.Reader, hdr *tar.Header, dir, rel string, uid, gid int) (File, error) {
	w := io.Discard
	var out *os.File
	if rel != "" {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := mkdirAllOwned(dir, filepath.Dir(dst), uid, gid); err != nil {
			return File{}, err
		}
		var err error
		out, err = os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(hdr.Mode).Perm())
		if err != nil {
			return File{}, err
		}
		defer out.Close()
		w = out
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), tr)
	if err != nil {
		return File{}, err
	}
	if out != nil {
		if uid >= 0 {
			if err := out.Chown(uid, gid); err != nil {
				return File{}, err
			}
		}
		if err := out.Sync(); err != nil {
			return File{}, err
		}
	}
	return File{Path: hdr.Name, Size: n, Mode: "0" + strconv.FormatInt(hdr.Mode&0o777, 8), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
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
