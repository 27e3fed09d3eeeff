package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The SQLite database holds every account, roster and message: it is private
// to the prosody user (0600) after a server started with
// PROSODY_STORAGE=sqlite has written accounts into it, and again after a
// backup of it is restored and the server runs on it. (Prosody 13.0's server
// does not apply its `umask` option; under the entrypoint's 022 umask the
// file used to be 0644.)
func TestSQLiteDatabaseIsPrivate(t *testing.T) {
	t.Parallel()
	const pw = "sqlite-Mode-pw-3"
	env := opsAccountsEnv(map[string]string{"PROSODY_STORAGE": "sqlite"}, pw)
	s := NewServer(t, Options{Env: env}).Start()
	s.WaitReady(20 * time.Second)
	opsWaitAccounts(s, 3)
	db := filepath.Join(s.Dir, "data", "prosody.sqlite")
	private := func(when string) {
		t.Helper()
		fi, err := os.Stat(db)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
			t.Errorf("%s: %s is %v, %d bytes; want a database with mode 0600", when, db, fi.Mode().Perm(), fi.Size())
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Errorf("%s: %s is owned by root; want the prosody user", when, db)
		}
	}
	private("after start")

	archive := filepath.Join(t.TempDir(), "sqlite-backup.tar.gz")
	if _, errOut, code := opsRunVerb(t, s, nil, "backup", "--out", archive); code != 0 {
		t.Fatalf("backup exit %d:\n%s", code, errOut)
	}
	if code := s.Stop(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if out, errOut, code := opsRunVerb(t, s, nil, "restore", archive); code != 0 {
		t.Fatalf("restore exit %d: %s %s", code, out, errOut)
	}
	private("after restore")

	env["PROSODY_ADMIN_PASSWORD"] = "" // every account must come from the archive
	r := NewServer(t, Options{Dir: s.Dir, Env: env}).Start()
	r.WaitReady(20 * time.Second)
	if !opsLogin(t, r, "alice@localhost", pw) {
		t.Fatal("alice cannot log in after the restore")
	}
	private("after a restart on the restored data")
}
