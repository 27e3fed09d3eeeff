//go:build docker

package deploy

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// The production + database + backup stack, as docker/scripts/compose.sh combines it (with the
// host-network overrides): the backup loop writes an archive with the PostgreSQL dump in it, and
// the restore in docs/operations.md round-trips: an account registered after start-up is in a
// fresh archive; the server is stopped, the database emptied (its schema dropped), the
// archive restored into the data volume and its postgres.sql loaded, and the restarted server
// logs that account in again. Before, the backup service ran with sqlite storage and wrote
// files-only archives while reporting success.
func TestImageComposeBackupRestoresDatabase(t *testing.T) {
	requireTool(t, "docker-compose", "docker-compose")
	root := repoRoot(t)

	const admin, adminPassword = "admin@localhost", "compose-admin-Kp3"
	const bob, bobPassword = "bob@localhost", "bob-registered-Zq8"
	// The backup gets the server's c2s port: restore refuses while something answers there.
	// The file list is compose.sh's own (it adds backup-database.yml); the test adds its layer.
	st := newDBStack(t, "pfetestbk", admin, adminPassword, func(p serverPorts) string {
		return "  backup:\n    environment:\n      PROSODY_C2S_PORT: \"" + strconv.Itoa(p.C2S) + "\"\n"
	}, func(override string) []string {
		return []string{"sh", filepath.Join(root, "docker", "scripts", "compose.sh"), "production", "database", "backup", "hostnet", "--", "--file", override}
	})
	ports, dbPort, run := st.ports, st.dbPort, st.run
	must := func(d time.Duration, more ...string) string {
		t.Helper()
		out, err := run(d, more...)
		if err != nil {
			t.Fatalf("compose.sh … %s: %v\n%s", strings.Join(more, " "), err, out)
		}
		return out
	}
	// up returns once db and prosody are healthy and backup is created (service_healthy).
	must(5*time.Minute, "up", "--detach", "--no-build")
	id := func(service string) string {
		out := must(time.Minute, "ps", "-q", service)
		if out == "" {
			t.Fatalf("no container for service %s", service)
		}
		return out
	}
	prosody, db := id("prosody"), id("db")
	if h := mustDocker(t, 10*time.Second, "inspect", "--format", "{{.State.Health.Status}}", prosody); h != "healthy" {
		t.Fatalf("backup was started while prosody is %q: depends_on condition service_healthy did not hold", h)
	}

	// The loop's first archive holds the database dump.
	var first string
	wait.Until(t, 2*time.Minute, "the backup loop to write its first archive", func() error {
		out, _ := run(30*time.Second, "logs", "--no-color", "backup")
		if strings.Contains(out, "backup: failed") {
			return wait.Abort(fmt.Errorf("the backup loop failed:\n%s", out))
		}
		for _, line := range strings.Split(out, "\n") {
			if _, f, ok := strings.Cut(line, "backup: wrote "); ok {
				first = strings.TrimSpace(f)
				return nil
			}
		}
		return fmt.Errorf("no archive yet")
	})
	if members := must(time.Minute, "exec", "-T", "backup", "tar", "-tzf", first); !strings.Contains(members, "postgres.sql") {
		t.Fatalf("the loop's archive %s has no postgres.sql:\n%s", first, members)
	}

	// An account that only the database knows (the admin bootstrap would re-create admin).
	mustDocker(t, time.Minute, "exec", prosody, "entrypoint", "prosodyctl", "register", "bob", "localhost", bobPassword)
	if err := xmppLogin(t, ports.C2S, bob, bobPassword); err != nil {
		t.Fatalf("login as %s after registering: %v", bob, err)
	}
	const archive = "/backups/roundtrip.tar.gz"
	must(2*time.Minute, "exec", "-T", "backup", "entrypoint", "backup", "--out", archive)
	if n := must(time.Minute, "exec", "-T", "backup", "sh", "-c", "tar -xzOf "+archive+" postgres.sql | grep -c \"$(printf 'localhost\\tbob\\taccounts')\""); n == "0" {
		t.Fatalf("postgres.sql in %s has no row for bob", archive)
	}

	// Lose the database, restore as docs/operations.md says.
	must(2*time.Minute, "stop", "--timeout", "30", "prosody")
	psql := func(sql string) (string, error) {
		return dockerCmd(t, 30*time.Second, "exec", db, "psql", "-U", "prosody", "-d", "prosody", "-p", strconv.Itoa(dbPort), "-tAc", sql)
	}
	if out, err := psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public"); err != nil {
		t.Fatalf("empty the database: %v\n%s", err, out)
	}
	if out, err := psql("SELECT count(*) FROM prosody"); err == nil {
		t.Fatalf("the prosody table is still there after emptying the database: %s", out)
	}
	// In the running backup container: docker-compose 1.29's `run` links the depends_on
	// services even with --no-deps, which Docker refuses with host networking.
	must(2*time.Minute, "exec", "-T", "backup", "entrypoint", "restore", archive)
	must(2*time.Minute, "exec", "-T", "backup", "sh", "-c", restorePostgresScript(archive))
	must(2*time.Minute, "start", "prosody")
	waitHealthy(t, prosody, 2*time.Minute)
	if err := xmppLogin(t, ports.C2S, bob, bobPassword); err != nil {
		t.Fatalf("after the restore, %s cannot log in: %v", bob, err)
	}
	if rows, err := psql(`SELECT count(*) FROM prosody WHERE host = 'localhost' AND "user" = 'bob' AND store = 'accounts'`); err != nil || rows == "0" {
		t.Fatalf("PostgreSQL has no account rows for bob after the restore (psql: %q, %v)", rows, err)
	}
}

// restorePostgresScript is docs/operations.md's command that loads an archive's postgres.sql into
// the (emptied) database, run in the backup service with the server's PROSODY_DB_* settings.
func restorePostgresScript(archive string) string {
	return `tar -xzOf ` + archive + ` postgres.sql | PGPASSWORD="$(cat "$PROSODY_DB_PASSWORD_FILE")" ` +
		`psql -h "$PROSODY_DB_HOST" -p "$PROSODY_DB_PORT" -U "$PROSODY_DB_USER" -d "$PROSODY_DB_NAME" -v ON_ERROR_STOP=1 -q`
}
