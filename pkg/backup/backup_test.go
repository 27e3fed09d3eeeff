package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sqlite(t *testing.T, db, sql string) string {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("sqlite3 not found: install the Debian package sqlite3")
	}
	out, err := exec.Command("sqlite3", db, sql).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A data directory with SQLite, internal files and a secret survives a round
// trip; what the restore replaced is kept aside.
func TestRoundTripKeepsEverythingAndMovesOldAside(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	writeFile(t, filepath.Join(data, "localhost", "accounts", "alice.dat"), "return {password=\"x\"};\n")
	writeFile(t, filepath.Join(data, "secrets", "component_secret"), "s3cr3t")
	db := filepath.Join(data, "prosody.sqlite")
	sqlite(t, db, "PRAGMA journal_mode=WAL; CREATE TABLE prosody(k TEXT); INSERT INTO prosody VALUES ('one'),('two');")
	var buf bytes.Buffer
	m, err := Create(context.Background(), Config{DataDir: data, Storage: "sqlite", Profile: "standard", Version: "test"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if m.Database != "sqlite: online backup" || len(m.Files) != 3 {
		t.Fatalf("manifest %+v", m)
	}
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := os.WriteFile(archive, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	// Wipe and change: the restore must bring the old state back and keep this one.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(data, "newer.txt"), "written after the backup")
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	res, err := Restore(context.Background(), RestoreConfig{DataDir: data, UID: -1, GID: -1, Now: func() time.Time { return now }}, archive)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 || res.Aside != data+".pre-restore-20250501T120000Z" {
		t.Fatalf("result %+v", res)
	}
	if b, err := os.ReadFile(filepath.Join(res.Aside, "newer.txt")); err != nil || string(b) != "written after the backup" {
		t.Fatalf("aside copy: %q %v", b, err)
	}
	if got := sqlite(t, db, "SELECT group_concat(k) FROM prosody;"); got != "one,two" {
		t.Fatalf("restored database has %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "secrets", "component_secret")); string(b) != "s3cr3t" {
		t.Fatalf("secret %q", b)
	}
	if _, err := os.Stat(filepath.Join(data, "newer.txt")); !os.IsNotExist(err) {
		t.Fatalf("newer.txt still in the data directory: %v", err)
	}
}

// A changed byte fails verification, and the data directory is untouched.
func TestTamperedArchiveIsRefused(t *testing.T) {
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "localhost", "roster", "alice.dat"), "return {};\n")
	var buf bytes.Buffer
	if _, err := Create(context.Background(), Config{DataDir: data, Storage: "internal"}, &buf); err != nil {
		t.Fatal(err)
	}
	// Rewrite the archive with one data byte changed.
	var out bytes.Buffer
	gz, _ := gzip.NewReader(&buf)
	tr := tar.NewReader(gz)
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if strings.HasPrefix(hdr.Name, "data/") {
			b[0] ^= 1
		}
		tw.WriteHeader(hdr)
		tw.Write(b)
	}
	tw.Close()
	gw.Close()
	if _, err := Verify(bytes.NewReader(out.Bytes())); err == nil || !strings.Contains(err.Error(), "checksum mismatch for data/localhost/roster/alice.dat") {
		t.Fatalf("Verify = %v, want a checksum mismatch naming the file", err)
	}
	target := t.TempDir()
	writeFile(t, filepath.Join(target, "keep.txt"), "keep")
	archive := filepath.Join(t.TempDir(), "bad.tar.gz")
	os.WriteFile(archive, out.Bytes(), 0o600)
	if _, err := Restore(context.Background(), RestoreConfig{DataDir: target, UID: -1, GID: -1}, archive); err == nil {
		t.Fatal("restore of a tampered archive succeeded")
	}
	entries, _ := os.ReadDir(target)
	if len(entries) != 1 || entries[0].Name() != "keep.txt" {
		t.Fatalf("data directory changed: %v", entries)
	}
}

// Restore refuses while something answers on the admin socket.
func TestRestoreRefusesWhileRunning(t *testing.T) {
	data := t.TempDir()
	sock := filepath.Join(data, "prosody.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Restore(context.Background(), RestoreConfig{DataDir: data, AdminSocket: sock, UID: -1, GID: -1}, "/nonexistent.tar.gz")
	if err == nil || !strings.Contains(err.Error(), "stop the server first") {
		t.Fatalf("Restore = %v, want a refusal", err)
	}
}

// TestDotDotMemberIsRefused: a member named exactly "data/.." passed the
// path check (it tested only the "../" prefix).
func TestDotDotMemberIsRefused(t *testing.T) {
	for _, name := range []string{"data/..", "data/../x", "data/."} {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: 1}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x"))
		tw.Close()
		gz.Close()
		archive := filepath.Join(t.TempDir(), "a.tar.gz")
		if err := os.WriteFile(archive, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Restore(context.Background(), RestoreConfig{DataDir: filepath.Join(t.TempDir(), "data"), UID: -1, GID: -1}, archive)
		if err == nil || !strings.Contains(err.Error(), "unsafe path") {
			t.Errorf("member %q: err = %v, want an unsafe path refusal", name, err)
		}
	}
}

// With PROSODY_STORAGE=postgres an archive without the database is never
// written: a missing pg_dump and an unreachable server both fail, and nothing
// appears at the output path. (They used to give a files-only archive and
// success, so a backup loop reported good backups with no data in them.)
func TestPostgresBackupWithoutDumpFails(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Fatal("pg_dump not found: install the Debian package postgresql-client")
	}
	// A port on loopback nobody listens on: connection refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for _, tc := range []struct {
		name, pgDump, want string
	}{
		{"pg_dump missing", "pg_dump-not-installed", `"pg_dump-not-installed" is not installed (Debian package postgresql-client)`},
		{"database unreachable", "", `pg_dump of database "prosody" on 127.0.0.1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			writeFile(t, filepath.Join(data, "secrets", "component_secret"), "s3cr3t")
			out := filepath.Join(t.TempDir(), "b.tar.gz")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := CreateFile(ctx, Config{DataDir: data, Storage: "postgres", PgDump: tc.pgDump,
				Postgres: Postgres{Host: "127.0.0.1", Port: closedPort, Name: "prosody", User: "prosody", Password: "db-Secret-77"}}, out, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CreateFile = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "db-Secret-77") {
				t.Errorf("the error shows the database password: %v", err)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s exists after a failed backup (stat: %v)", out, err)
			}
		})
	}
}

// A backup run with the default storage on a data directory whose server
// stores in PostgreSQL (migrations.json says so) refuses, naming the setting.
func TestBackupRefusesStorageOtherThanRecordedPostgres(t *testing.T) {
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "migrations.json"), `{"current": "postgres", "migrations": []}`+"\n")
	var buf bytes.Buffer
	_, err := Create(context.Background(), Config{DataDir: data, Storage: "sqlite"}, &buf)
	if err == nil || !strings.Contains(err.Error(), `stores its data in postgres, but this backup has PROSODY_STORAGE="sqlite"`) {
		t.Fatalf("Create = %v, want a refusal naming PROSODY_STORAGE", err)
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes written before the refusal", buf.Len())
	}
	// The recorded sqlite storage and a sqlite backup agree: no refusal.
	writeFile(t, filepath.Join(data, "migrations.json"), `{"current": "sqlite", "migrations": []}`+"\n")
	if _, err := Create(context.Background(), Config{DataDir: data, Storage: "sqlite"}, &buf); err != nil {
		t.Fatalf("Create with matching storage: %v", err)
	}
}
