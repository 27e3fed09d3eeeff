// Package migrate moves Prosody's data between storage backends (internal
// files, SQLite, PostgreSQL) with Prosody's own prosody-migrator, before the
// server starts, when PROSODY_STORAGE changed on an existing data volume.
//
// The storage in use is recorded in <data>/migrations.json together with every
// migration that ran (from, to, time, result). Without that record the previous
// storage is detected on disk: per-host accounts directories mean internal, a
// prosody.sqlite file means sqlite (PostgreSQL leaves nothing on disk, so it is
// known only from the record). The source is never deleted or changed.
package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
)

// RecordFile is the name of the record in the data directory.
const RecordFile = "migrations.json"

// Storage kinds, as PROSODY_STORAGE names them.
const (
	Internal = "internal"
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// SQLiteFile is the SQLite database the rendered config uses, relative to the data directory.
const SQLiteFile = "prosody.sqlite"

// PrivateSQLite makes <dataDir>/prosody.sqlite a file private to its owner
// (mode 0600, owned by uid:gid; -1 keeps): created empty when missing (SQLite
// takes an empty file for a new database), made private when it exists, and
// so are its -wal, -shm and -journal files when present. The database holds
// every account, roster and archived message. Prosody creates it with the
// process umask: Prosody 13.0's server never applies its `umask` option (only
// prosodyctl does), so under a 022 umask the file was 0644. SQLite gives its
// journal files the database's mode, so they follow.
func PrivateSQLite(dataDir string, uid, gid int) error {
	db := filepath.Join(dataDir, SQLiteFile)
	if err := atomicfile.EnsureFile(db, 0o600, uid, gid); err != nil {
		return fmt.Errorf("make the SQLite database private: %w", err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		err := atomicfile.SetOwnerMode(db+suffix, 0o600, uid, gid)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("make the SQLite database private: %w", err)
		}
	}
	return nil
}

// Store lists of prosody-migrator (as in Prosody's example migrator.cfg.lua):
// "name" is a keyval store, "name-archive" an archive, "name-pubsub" a
// pubsub store with its per-node archives. Each call returns a new slice.

// HostStores are the stores of a VirtualHost.
func HostStores() []string {
	return []string{"accounts", "account_details", "account_roles", "roster", "vcard", "private",
		"blocklist", "privacy", "archive-archive", "offline-archive", "pubsub_nodes-pubsub", "pep-pubsub",
		"cron", "smacks_h"}
}

// MUCStores are the stores of a MUC component.
func MUCStores() []string {
	return []string{"persistent", "config", "state", "muc_log-archive", "cron"}
}

// UploadStores are the stores of an HTTP file share component.
func UploadStores() []string { return []string{"uploads-archive", "upload_stats", "cron"} }

// Host is one host to migrate and its stores.
type Host struct {
	Name   string
	Stores []string
}

// PostgresDB is the PostgreSQL database (the password goes only into the
// migrator's config file, mode 0400, removed after the run).
type PostgresDB struct {
	Host, Name, User, Password string
	Port                       int
}

// Migration is one entry of the record.
type Migration struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	Time   time.Time `json:"time"`
	Result string    `json:"result"` // "ok" or "failed"
	Error  string    `json:"error,omitempty"`
	Hosts  []string  `json:"hosts"`
	// Duration is in seconds.
	Duration float64 `json:"duration_seconds"`
}

// Record is the content of <data>/migrations.json.
type Record struct {
	// Current is the storage the data is in.
	Current    string      `json:"current"`
	Migrations []Migration `json:"migrations"`
}

// ReadRecord reads the record of dataDir; a missing file is an empty record.
// The data directory is prosody's: the record is read as atomicfile reads (a
// link prosody planted there is refused, as is a FIFO or device), so a root
// entrypoint never reads another file through it nor blocks on it.
func ReadRecord(dataDir string) (Record, error) {
	var r Record
	b, err := atomicfile.ReadFile(filepath.Join(dataDir, RecordFile), atomicfile.ReadOptions{})
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read migration record: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode migration record %s: %w; fix or remove it", filepath.Join(dataDir, RecordFile), err)
	}
	return r, nil
}

func writeRecord(dataDir string, r Record, uid, gid int) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if _, err := atomicfile.Write(filepath.Join(dataDir, RecordFile), append(b, '\n'), 0o640, uid, gid); err != nil {
		return fmt.Errorf("write migration record: %w", err)
	}
	return nil
}

// OnDisk lists the storages that have data in dataDir: "internal" when a host
// directory holds an accounts directory, "sqlite" when prosody.sqlite exists.
func OnDisk(dataDir string) ([]string, error) {
	var found []string
	dirs, err := filepath.Glob(filepath.Join(dataDir, "*", "accounts"))
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			found = append(found, Internal)
			break
		}
	}
	if fi, err := os.Stat(filepath.Join(dataDir, SQLiteFile)); err == nil && fi.Size() > 0 {
		found = append(found, SQLite)
	}
	return found, nil
}

// Previous returns the storage the data in dataDir is in: the record's
// Current, else what OnDisk finds; "" for an empty data directory. When both
// internal files and a SQLite file exist and there is no record, the answer
// is want if it is one of them, otherwise an error (it cannot be told).
func Previous(dataDir, want string) (string, error) {
	r, err := ReadRecord(dataDir)
	if err != nil {
		return "", err
	}
	if r.Current != "" {
		return r.Current, nil
	}
	found, err := OnDisk(dataDir)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	for _, f := range found {
		if f == want {
			return want, nil
		}
	}
	return "", fmt.Errorf("%s holds both internal storage files and %s and has no %s: cannot tell which is current; "+
		"start once with PROSODY_STORAGE set to the one in use, then change it", dataDir, SQLiteFile, RecordFile)
}

// Config is one run of Ensure.
type Config struct {
	// DataDir is the data directory. Required.
	DataDir string
	// To is the configured storage (PROSODY_STORAGE). Required.
	To string
	// Hosts are the hosts and stores to migrate.
	Hosts []Host
	// Postgres is the database when From or To is postgres.
	Postgres PostgresDB
	// WorkDir holds the migrator's config file while it runs (the runtime
	// directory). Required.
	WorkDir string
	// Migrator is the prosody-migrator program; "" means from PATH.
	Migrator string
	// UID and GID are who the migrator runs as, and who owns the files it
	// reads; -1 means the caller's identity.
	UID, GID int
	// Env is the migrator's environment; nil means the caller's.
	Env []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means none.
	Logger *zap.Logger
}

// Ensure brings the data to cfg.To: it does nothing when the data is already
// there (or there is none yet) and otherwise runs prosody-migrator from the
// previous storage. It records the storage in use and every run in
// migrations.json, and returns the run (nil when none was needed). A failed
// run is recorded and returned as an error; the record's Current stays the
// source, so the next start tries again. When cfg.To is sqlite, the database
// is made private first (PrivateSQLite), so neither prosody-migrator nor
// Prosody creates it under its own umask.
func Ensure(ctx context.Context, cfg Config) (*Migration, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	switch cfg.To {
	case Internal, SQLite, Postgres:
	default:
		return nil, nil // memory or another backend: nothing to move
	}
	if cfg.To == SQLite {
		if err := PrivateSQLite(cfg.DataDir, cfg.UID, cfg.GID); err != nil {
			return nil, err
		}
	}
	from, err := Previous(cfg.DataDir, cfg.To)
	if err != nil {
		return nil, err
	}
	rec, err := ReadRecord(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if from == "" || from == cfg.To {
		if rec.Current != cfg.To {
			rec.Current = cfg.To
			return nil, writeRecord(cfg.DataDir, rec, cfg.UID, cfg.GID)
		}
		return nil, nil
	}
	if err := destinationEmpty(cfg.DataDir, cfg.To); err != nil {
		return nil, err
	}
	hosts := make([]string, len(cfg.Hosts))
	for i, h := range cfg.Hosts {
		hosts[i] = h.Name
	}
	start := cfg.Now()
	m := Migration{From: from, To: cfg.To, Time: start.UTC().Truncate(time.Second), Hosts: hosts}
	cfg.Logger.Info("storage migration", zap.String("from", from), zap.String("to", cfg.To), zap.Strings("hosts", hosts))
	runErr := run(ctx, cfg, from)
	m.Duration = time.Since(start).Seconds()
	if runErr != nil {
		m.Result, m.Error = "failed", runErr.Error()
	} else {
		m.Result = "ok"
		rec.Current = cfg.To
	}
	rec.Migrations = append(rec.Migrations, m)
	if err := writeRecord(cfg.DataDir, rec, cfg.UID, cfg.GID); err != nil {
		return &m, errors.Join(runErr, err)
	}
	if runErr != nil {
		return &m, fmt.Errorf("migrate storage from %s to %s (PROSODY_STORAGE=%s): %w; the %s data is untouched: set PROSODY_STORAGE=%s to run on it",
			from, cfg.To, cfg.To, runErr, from, from)
	}
	cfg.Logger.Info("storage migrated", zap.String("from", from), zap.String("to", cfg.To), zap.Float64("seconds", m.Duration))
	return &m, nil
}

// destinationEmpty refuses to migrate into files that already hold data:
// keyval stores would be overwritten and archives doubled.
func destinationEmpty(dataDir, to string) error {
	found, err := OnDisk(dataDir)
	if err != nil {
		return err
	}
	for _, f := range found {
		if f == to {
			what := SQLiteFile
			if to == Internal {
				what = "the per-host storage directories"
			}
			return fmt.Errorf("migrate storage to %s: %s in %s already holds data; move it away (or record %s as current in %s) and start again",
				to, what, dataDir, to, RecordFile)
		}
	}
	return nil
}

// store is the Lua value of one migrator store; internal stores live in path.
func store(kind string, cfg Config, path string) map[string]any {
	switch kind {
	case Internal:
		return map[string]any{"type": "internal", "path": path}
	case SQLite:
		return map[string]any{"type": "sql", "driver": "SQLite3", "database": filepath.Join(cfg.DataDir, SQLiteFile)}
	default:
		s := map[string]any{"type": "sql", "driver": "PostgreSQL", "database": cfg.Postgres.Name,
			"username": cfg.Postgres.User, "password": cfg.Postgres.Password, "host": cfg.Postgres.Host}
		if cfg.Postgres.Port != 0 {
			s["port"] = cfg.Postgres.Port
		}
		return s
	}
}

// hop is one prosody-migrator run.
type hop struct {
	from, to       string
	fromDir, toDir string // internal store paths
}

// plan returns the migrator runs from one storage to another. prosody-migrator
// loads one SQL driver per host, so it cannot read one SQL database and write
// another: SQL to SQL goes through internal files in tmpDir.
func plan(from, to, dataDir, tmpDir string) []hop {
	if from != Internal && to != Internal {
		return []hop{{from, Internal, dataDir, tmpDir}, {Internal, to, tmpDir, dataDir}}
	}
	return []hop{{from, to, dataDir, dataDir}}
}

// MigratorConfig renders prosody-migrator's config for one run: an "input"
// store of kind from (internal files in fromDir) with the hosts and their
// stores, and an "output" store of kind to (internal files in toDir).
func MigratorConfig(cfg Config, from, fromDir, to, toDir string) ([]byte, error) {
	in := store(from, cfg, fromDir)
	hosts := map[string]any{}
	for _, h := range cfg.Hosts {
		hosts[h.Name] = h.Stores
	}
	in["hosts"] = hosts
	var b strings.Builder
	b.WriteString("-- prosody-migrator config written by the entrypoint; removed after the run\n")
	for _, s := range []struct {
		name string
		v    map[string]any
	}{{"input", in}, {"output", store(to, cfg, toDir)}} {
		v, err := luacfg.Value(s.v)
		if err != nil {
			return nil, fmt.Errorf("encode migrator %s store: %w", s.name, err)
		}
		fmt.Fprintf(&b, "%s %s\n", s.name, v)
	}
	return []byte(b.String()), nil
}
