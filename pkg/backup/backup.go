// Package backup writes and restores archives of a Prosody data directory.
//
// An archive is a gzip-compressed tar with:
//
//	data/<path>      every regular file of the data directory (internal storage,
//	                 generated secrets in secrets/, generated certificates in
//	                 certs/, migrations.json, ...) but the config check's
//	                 verdicts (checkcache.FileName); SQLite databases are copied
//	                 with the sqlite3 CLI's `.backup` (an online, consistent copy
//	                 even while Prosody writes), recorded with mode 0600, and
//	                 their -wal/-shm/-journal files are left out; sockets and
//	                 other special files are left out
//	postgres.sql     a pg_dump of the PostgreSQL database, when the storage is
//	                 postgres (required then: no archive is written without it)
//	manifest.json    the Manifest: format, versions, time, storage, profile and
//	                 each file with its size and SHA-256
//	SHA256SUMS       the same checksums in `sha256sum -c` form
//
// Restore verifies every checksum and size before it touches the data
// directory, holds every member to its verified size while it extracts (a
// member larger than declared never fills the volume), and keeps everything
// it replaces in a directory beside (or, for a volume mount point, inside)
// the data directory.
package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/checkcache"
	"github.com/prosody-pfe/prosody-pfe/pkg/migrate"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
	"go.uber.org/zap"
)

// FormatVersion is the archive format this package writes and reads.
const FormatVersion = 1

// Archive member names.
const (
	dataPrefix   = "data/"
	manifestName = "manifest.json"
	sumsName     = "SHA256SUMS"
	postgresName = "postgres.sql"
)

// Manifest describes an archive.
type Manifest struct {
	Format    int       `json:"format"`
	Version   string    `json:"version"` // the entrypoint that wrote it
	Created   time.Time `json:"created"`
	Storage   string    `json:"storage"`
	Profile   string    `json:"profile,omitempty"`
	DataDir   string    `json:"data_dir"`
	Files     []File    `json:"files"`
	Database  string    `json:"database"` // what happened to the database: see Create
	Hostnames []string  `json:"hosts,omitempty"`
}

// File is one member of an archive (its name relative to the archive root).
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   string `json:"mode"`
	SHA256 string `json:"sha256"`
}

// Postgres is how pg_dump reaches the database.
type Postgres struct {
	Host, Name, User string
	Port             int
	Password         string // passed in PGPASSWORD, never on the command line
}

// Config is what Create backs up.
type Config struct {
	// DataDir is the data directory (PROSODY_DATA_DIR). Required.
	DataDir string
	// Storage is "internal", "sqlite" or "postgres"; recorded, and "postgres"
	// makes Create run pg_dump.
	Storage string
	// Profile and Hosts are recorded in the manifest.
	Profile string
	Hosts   []string
	// Version is the entrypoint's version, recorded.
	Version string
	// Postgres is used when Storage is "postgres".
	Postgres Postgres
	// SQLite3 and PgDump are the programs; "" means "sqlite3" and "pg_dump"
	// from PATH.
	SQLite3, PgDump string
	// TempDir holds SQLite copies while the archive is written; "" means the
	// system's temporary directory.
	TempDir string
	// Exclude are files never archived: the archive being written and its
	// temporary file, when they are inside DataDir.
	Exclude []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means none.
	Logger *zap.Logger
}

// Create writes an archive of cfg.DataDir to w and returns its manifest.
// Manifest.Database says what was done with the database: "sqlite: online
// backup" (the sqlite3 program is required when a SQLite file exists),
// "postgres: pg_dump", or "files" for internal storage.
//
// With cfg.Storage "postgres", Create fails before writing anything when
// pg_dump is not installed, and fails when pg_dump cannot dump the database
// (unreachable, refused, wrong password): an archive without the database is
// never returned as a backup. It also fails when <data>/migrations.json
// records postgres as the storage in use and cfg.Storage is not postgres
// (the backup was not given the server's storage settings).
func Create(ctx context.Context, cfg Config, w io.Writer) (*Manifest, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("backup: data directory is empty: set PROSODY_DATA_DIR")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.SQLite3 == "" {
		cfg.SQLite3 = "sqlite3"
	}
	if cfg.PgDump == "" {
		cfg.PgDump = "pg_dump"
	}
	if _, err := os.Stat(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("backup: data directory (PROSODY_DATA_DIR): %w", err)
	}
	if err := sameStorage(cfg); err != nil {
		return nil, err
	}
	if cfg.Storage == migrate.Postgres {
		// Checked before anything is written: an archive without the database
		// must never look like a good backup.
		if _, err := supervise.LookPath(cfg.PgDump, nil); err != nil {
			return nil, fmt.Errorf("backup: PROSODY_STORAGE is postgres but %q is not installed (Debian package postgresql-client): "+
				"the archive would hold no database: %w", cfg.PgDump, err)
		}
	}
	tmp, err := os.MkdirTemp(cfg.TempDir, "prosody-backup-")
	if err != nil {
		return nil, fmt.Errorf("backup: temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	m := &Manifest{Format: FormatVersion, Version: cfg.Version, Created: cfg.Now().UTC().Truncate(time.Second),
		Storage: cfg.Storage, Profile: cfg.Profile, DataDir: cfg.DataDir, Hostnames: cfg.Hosts, Database: "files"}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	aw := &archiveWriter{tw: tw, m: m, now: m.Created}

	excluded := map[string]bool{}
	for _, p := range cfg.Exclude {
		if abs, err := filepath.Abs(p); err == nil {
			excluded[abs] = true
		}
	}
	err = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(cfg.DataDir, path)
		if rel == "." {
			return nil
		}
		if path == tmp || excluded[path] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // the archive being written, or our own scratch space
		}
		if d.IsDir() {
			if isAside(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || isSQLiteSidecar(d.Name()) {
			return nil // sockets, links, fifos; SQLite's journal files are in the .backup copy
		}
		if rel == checkcache.FileName {
			return nil // root's, unreadable by a backup run as prosody; a restore checks again
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		name := dataPrefix + filepath.ToSlash(rel)
		if sqlite, err := isSQLite(path); err != nil {
			return err
		} else if sqlite {
			copyPath := filepath.Join(tmp, "db.sqlite")
			if err := sqliteBackup(ctx, cfg.SQLite3, path, copyPath); err != nil {
				return err
			}
			defer os.Remove(copyPath)
			m.Database = "sqlite: online backup"
			cfg.Logger.Info("sqlite online backup", zap.String("database", path))
			// Recorded 0600 whatever the live file's mode: the database holds
			// every account, roster and message.
			return aw.addFile(name, copyPath, 0o600)
		}
		return aw.addFile(name, path, info.Mode().Perm())
	})
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", cfg.DataDir, err)
	}
	if cfg.Storage == migrate.Postgres {
		dump := filepath.Join(tmp, postgresName)
		if err := pgDump(ctx, cfg.PgDump, cfg.Postgres, dump); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		if err := aw.addFile(postgresName, dump, 0o600); err != nil {
			return nil, fmt.Errorf("backup: add %s: %w", postgresName, err)
		}
		m.Database = "postgres: pg_dump"
	}
	if err := aw.finish(); err != nil {
		return nil, fmt.Errorf("backup: write archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: write archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("backup: write archive: %w", err)
	}
	return m, nil
}

// sameStorage refuses a backup whose storage setting differs from the one the
// server recorded in <data>/migrations.json as holding the data, when that
// recorded storage is PostgreSQL: the data directory then holds no database,
// and an archive of it alone would restore to an empty server.
func sameStorage(cfg Config) error {
	rec, err := migrate.ReadRecord(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if rec.Current == migrate.Postgres && cfg.Storage != migrate.Postgres {
		return fmt.Errorf("backup: %s says the server stores its data in postgres, but this backup has PROSODY_STORAGE=%q: "+
			"the archive would hold no database; give the backup the server's PROSODY_STORAGE=postgres and PROSODY_DB_* settings "+
			"(with Compose: add compose/backup-database.yml)",
			filepath.Join(cfg.DataDir, migrate.RecordFile), cfg.Storage)
	}
	return nil
}

// archiveWriter adds files and records them in the manifest.
type archiveWriter struct {
	tw  *tar.Writer
	m   *Manifest
	now time.Time
}

// addFile opens path as atomicfile does: the data directory is prosody's, and
// a backup run as root (`docker exec ... entrypoint backup`) must not read,
// through a link prosody swapped in after the walk saw a regular file, a
// file prosody cannot read, nor block on a FIFO.
func (a *archiveWriter) addFile(name, path string, mode os.FileMode) error {
	f, err := atomicfile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: int64(mode), Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(a.tw, h), f)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if n != fi.Size() {
		return fmt.Errorf("read %s: size changed while reading (%d, then %d bytes)", path, fi.Size(), n)
	}
	a.m.Files = append(a.m.Files, File{Path: name, Size: n, Mode: fmt.Sprintf("%04o", mode), SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

func (a *archiveWriter) addBytes(name string, b []byte) error {
	if err := a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: a.now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := a.tw.Write(b)
	return err
}

// finish writes manifest.json and SHA256SUMS.
func (a *archiveWriter) finish() error {
	sort.Slice(a.m.Files, func(i, j int) bool { return a.m.Files[i].Path < a.m.Files[j].Path })
	mb, err := json.MarshalIndent(a.m, "", "  ")
	if err != nil {
		return err
	}
	if err := a.addBytes(manifestName, append(mb, '\n')); err != nil {
		return err
	}
	var sums bytes.Buffer
	for _, f := range a.m.Files {
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, f.Path)
	}
	mh := sha256.Sum256(append(mb, '\n'))
	fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(mh[:]), manifestName)
	return a.addBytes(sumsName, sums.Bytes())
}

// isAside reports directories this package makes inside a data directory.
func isAside(name string) bool {
	return strings.HasPrefix(name, ".pre-restore-") || strings.HasPrefix(name, ".restore-")
}

func isSQLiteSidecar(name string) bool {
	for _, suf := range []string{"-wal", "-shm", "-journal"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// isSQLite reports whether path starts with the SQLite 3 file header.
func isSQLite(path string) (bool, error) {
	f, err := atomicfile.Open(path) // as addFile: no link, no FIFO
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	return n == 16 && string(head) == "SQLite format 3\x00", nil
}

// sqliteBackup copies the database src to dst with the sqlite3 CLI's online
// backup API (consistent while another process writes).
func sqliteBackup(ctx context.Context, sqlite3, src, dst string) error {
	if _, err := supervise.LookPath(sqlite3, nil); err != nil {
		return fmt.Errorf("sqlite backup of %s needs the sqlite3 program (Debian package sqlite3): %w", src, err)
	}
	// The destination is quoted for sqlite3's dot-command parser.
	out, err := run(ctx, supervise.AuxCommand{Path: sqlite3, Args: []string{"-bail", src, ".timeout 10000", ".backup '" + strings.ReplaceAll(dst, "'", "''") + "'"}})
	if err != nil {
		return fmt.Errorf("sqlite3 .backup of %s: %w: %s", src, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pgDump writes a plain SQL dump (no owners, no privileges: it restores into
// any role) of the database to dst.
func pgDump(ctx context.Context, pgdump string, p Postgres, dst string) error {
	args := []string{"--no-owner", "--no-privileges", "--file", dst, "--host", p.Host, "--username", p.User, "--dbname", p.Name}
	if p.Port != 0 {
		args = append(args, "--port", fmt.Sprint(p.Port))
	}
	out, err := run(ctx, supervise.AuxCommand{Path: pgdump, Args: args, Env: append(os.Environ(), "PGPASSWORD="+p.Password)})
	if err != nil {
		return fmt.Errorf("pg_dump of database %q on %s: %w: %s", p.Name, p.Host, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// run runs a helper program to completion: its combined output, and an error
// when it could not run or exited non-zero.
func run(ctx context.Context, cmd supervise.AuxCommand) ([]byte, error) {
	out, code, err := supervise.Command(ctx, cmd, nil, nil)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d", code)
	}
	return out, err
}
