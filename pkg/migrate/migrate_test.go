package migrate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPreviousFromRecordThenDisk(t *testing.T) {
	mk := func(t *testing.T, files ...string) string {
		dir := t.TempDir()
		for _, f := range files {
			p := filepath.Join(dir, f)
			if strings.HasSuffix(f, "/") {
				os.MkdirAll(p, 0o755)
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("x"), 0o644)
		}
		return dir
	}
	for _, tc := range []struct {
		name, want, prev, err string
		files                 []string
	}{
		{name: "empty", want: SQLite, prev: ""},
		{name: "internal", want: SQLite, prev: Internal, files: []string{"localhost/accounts/"}},
		{name: "sqlite", want: Internal, prev: SQLite, files: []string{SQLiteFile}},
		{name: "both, want one of them", want: SQLite, prev: SQLite, files: []string{"localhost/accounts/", SQLiteFile}},
		{name: "both, want postgres", want: Postgres, err: "cannot tell which is current", files: []string{"localhost/accounts/", SQLiteFile}},
		{name: "record wins", want: Internal, prev: Postgres, files: []string{SQLiteFile, RecordFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := mk(t, tc.files...)
			if tc.name == "record wins" {
				os.WriteFile(filepath.Join(dir, RecordFile), []byte(`{"current":"postgres","migrations":[]}`), 0o644)
			}
			got, err := Previous(dir, tc.want)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.prev {
				t.Fatalf("Previous = %q, %v; want %q", got, err, tc.prev)
			}
		})
	}
}

// The migrator config is valid Lua, and a hostile password stays a string.
func TestMigratorConfigIsLua(t *testing.T) {
	cfg := Config{DataDir: "/var/lib/prosody", To: Postgres,
		Hosts:    []Host{{Name: "example.com", Stores: HostStores()}, {Name: "conference.example.com", Stores: MUCStores()}},
		Postgres: PostgresDB{Host: "db", Name: "prosody", User: "prosody", Password: "x\"]] os.exit(3) --", Port: 5432}}
	text, err := MigratorConfig(cfg, Internal, cfg.DataDir, Postgres, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.cfg.lua")
	os.WriteFile(path, text, 0o600)
	luac, err := exec.LookPath("luac5.4")
	if err != nil {
		t.Fatal("luac5.4 not found: install the Debian package lua5.4")
	}
	if out, err := exec.Command(luac, "-p", path).CombinedOutput(); err != nil {
		t.Fatalf("luac: %v %s\n%s", err, out, text)
	}
	for _, want := range []string{`input {`, `type = "internal"`, `["example.com"] = {`, `"muc_log-archive"`, `output {`, `driver = "PostgreSQL"`, `port = 5432`} {
		if !strings.Contains(string(text), want) {
			t.Errorf("config lacks %s:\n%s", want, text)
		}
	}
}

// Nothing to migrate on a fresh volume: the record names the storage in use.
func TestEnsureRecordsCurrentOnFreshVolume(t *testing.T) {
	dir := t.TempDir()
	m, err := Ensure(context.Background(), Config{DataDir: dir, To: SQLite, WorkDir: dir, UID: -1, GID: -1})
	if err != nil || m != nil {
		t.Fatalf("Ensure = %v, %v", m, err)
	}
	r, err := ReadRecord(dir)
	if err != nil || r.Current != SQLite || len(r.Migrations) != 0 {
		t.Fatalf("record %+v %v", r, err)
	}
}

// With PROSODY_STORAGE=sqlite the database is private before Prosody or the
// migrator opens it: created empty 0600 on a fresh volume, and a 0644 one
// (and its WAL) left by an earlier start made 0600 with its content kept.
func TestEnsureMakesTheSQLiteDatabasePrivate(t *testing.T) {
	fresh := t.TempDir()
	if _, err := Ensure(context.Background(), Config{DataDir: fresh, To: SQLite, WorkDir: fresh, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(fresh, SQLiteFile))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 0 {
		t.Fatalf("fresh volume: %v %v; want an empty 0600 %s", err, fi, SQLiteFile)
	}
	if prev, err := Previous(fresh, Internal); err != nil || prev != SQLite {
		t.Fatalf("Previous = %q, %v; the record still says sqlite", prev, err)
	}

	old := t.TempDir()
	db := filepath.Join(old, SQLiteFile)
	for _, p := range []string{db, db + "-wal"} {
		if err := os.WriteFile(p, []byte("SQLite format 3\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Ensure(context.Background(), Config{DataDir: old, To: SQLite, WorkDir: old, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{db, db + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 16 {
			t.Errorf("%s: %v %v; want 0600 with its content", p, err, fi)
		}
	}
}
