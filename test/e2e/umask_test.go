package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Prosody's files are not world-readable: Prosody 13's server ignores its
// `umask` option, so the entrypoint starts it with that option (Prosody's
// default 027). The account files of internal storage hold password hashes:
// those made by the admin bootstrap (the server), by `entrypoint prosodyctl
// register` and by the `docker exec` wrapper's `prosodyctl register`
// (prosodyctl applies the option itself) are all 0640 at most, although the
// entrypoint itself runs under a container's usual 022.
func TestProsodyFilesAreNotWorldReadable(t *testing.T) {
	// The umask of a container's PID 1 (Docker's default): without the fix
	// every file Prosody made got it.
	defer unix.Umask(unix.Umask(0o022))
	const pw = "umask-Private-pw-7"
	s := NewServer(t, Options{Env: opsAccountsEnv(map[string]string{"PROSODY_STORAGE": "internal"}, pw)}).Start()
	s.WaitReady(20 * time.Second)
	opsWaitAccounts(s, 3)

	if _, stderr, code := opsRunVerb(t, s, nil, "prosodyctl", "register", "carol", "localhost", pw); code != 0 {
		t.Fatalf("entrypoint prosodyctl register: exit %d\n%s", code, stderr)
	}
	// The wrapper: the entrypoint run under the name prosodyctl.
	wrapperDir := t.TempDir()
	if err := os.Symlink(entrypointBin, filepath.Join(wrapperDir, "prosodyctl")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "prosodyctl", "register", "dave", "localhost", pw)
	cmd.Env = []string{"PATH=" + wrapperDir + ":" + os.Getenv("PATH")}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Path = filepath.Join(wrapperDir, "prosodyctl")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("prosodyctl wrapper register: %v\n%s", err, out.String())
	}

	accounts := filepath.Join(s.Dir, "data", "localhost", "accounts")
	for _, name := range []string{"admin", "alice", "bob", "carol", "dave"} {
		fi, err := os.Stat(filepath.Join(accounts, name+".dat"))
		if err != nil {
			t.Errorf("account %s: %v", name, err)
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o007 != 0 {
			t.Errorf("%s is mode %v: world-readable password hash; want 0640 at most", fi.Name(), perm)
		}
	}
	if fi, err := os.Stat(accounts); err == nil && fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("%s is mode %v; want no access for others", accounts, fi.Mode().Perm())
	}
}
