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
