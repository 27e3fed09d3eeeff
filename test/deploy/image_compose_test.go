//go:build docker

package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// postgresImage is database.yml's default db image, built here from docker/images/postgres
// (no registry can be pulled from in CI; Debian's packages can be installed).
const postgresImage = "prosody-pfe-postgres:17"

// base.yml + database.yml + production.yml, with the host-network overrides: the server waits
// for a healthy PostgreSQL, becomes healthy itself, creates the admin account in PostgreSQL
// (the row is read back with psql in the db container), a real client logs in, and
// production.yml's capability set still lets `docker stop` end Prosody cleanly (exit 0).
func TestImageComposeDatabaseProduction(t *testing.T) {
	compose := requireTool(t, "docker-compose", "docker-compose")
	root := repoRoot(t)

	const jid, password = "admin@localhost", "compose-admin-Kp3"
	st := newDBStack(t, "pfetest", jid, password, nil, func(override string) []string {
		args := []string{compose}
		for _, f := range []string{"base", "database", "production", "hostnet", "hostnet-database"} {
			args = append(args, "--file", filepath.Join(root, "compose", f+".yml"))
		}
		return append(args, "--file", override)
	})
	ports, dbPort, run := st.ports, st.dbPort, st.run

	start := time.Now()
	// up returns once db is healthy and prosody is created (depends_on: service_healthy).
	if out, err := run(5*time.Minute, "up", "--detach", "--no-build"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	id := func(service string) string {
		out, err := run(time.Minute, "ps", "-q", service)
		if err != nil || out == "" {
			t.Fatalf("docker-compose ps -q %s: %v %q", service, err, out)
		}
		return out
	}
	prosody, db := id("prosody"), id("db")
	if h := mustDocker(t, 10*time.Second, "inspect", "--format", "{{.State.Health.Status}}", db); h != "healthy" {
		t.Fatalf("prosody was started while db is %q: depends_on condition service_healthy did not hold", h)
	}
	waitHealthy(t, prosody, 2*time.Minute)
	t.Logf("compose: db and prosody healthy %s after up", time.Since(start).Round(time.Millisecond))

	// The rendered config stores in PostgreSQL, and the account lives there.
	cfg := mustDocker(t, 30*time.Second, "exec", prosody, "cat", "/run/prosody-pfe/prosody.cfg.lua")
	if !strings.Contains(cfg, `driver = "PostgreSQL"`) {
		t.Errorf("rendered config has no PostgreSQL sql settings:\n%s", cfg)
	}
	if err := xmppLogin(t, ports.C2S, jid, password); err != nil {
		t.Fatalf("login as %s: %v", jid, err)
	}
	query := `SELECT count(*) FROM prosody WHERE host = 'localhost' AND "user" = 'admin' AND store = 'accounts'`
	rows := mustDocker(t, 30*time.Second, "exec", db, "psql", "-U", "prosody", "-d", "prosody",
		"-p", strconv.Itoa(dbPort), "-tAc", query)
	if n, err := strconv.Atoi(rows); err != nil || n < 1 {
		t.Fatalf("PostgreSQL has no account rows for %s (psql: %q): the server did not store the account there", jid, rows)
	}
	t.Logf("PostgreSQL holds %s account row(s) for %s", rows, jid)

	stopAndCheck(t, prosody)
}

// dbStack is a database compose project of a test, brought down (volumes too) when the test
// ends, with its logs when the test failed.
type dbStack struct {
	ports  serverPorts
	dbPort int
	// run runs the project's compose command with more arguments.
	run func(d time.Duration, more ...string) (string, error)
}

// newDBStack is the set-up the database compose tests share: the PostgreSQL image, a password
// secret, free ports, and the test's override layer: the server's ports on 127.0.0.1, a
// self-signed certificate for localhost (production refuses one unless allowed), the admin
// account, a fast health check, then what extraYAML (when not nil) adds for these ports. command returns the compose
// command line (program, files) with the override file as the last layer.
func newDBStack(t *testing.T, prefix, admin, adminPassword string, extraYAML func(serverPorts) string, command func(override string) []string) dbStack {
	t.Helper()
	buildPostgresImage(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "db_password.txt")
	if err := os.WriteFile(secret, []byte("db-pass-"+uniqueName("")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := dbStack{ports: newServerPorts(t), dbPort: freePort(t)}
	var env strings.Builder
	for k, v := range st.ports.env() {
		fmt.Fprintf(&env, "      %s: %q\n", k, v)
	}
	override := filepath.Join(dir, "test-override.yml")
	overrideYAML := `services:
  prosody:
    environment:
` + env.String() + `      PROSODY_TLS_ALLOW_SELF_SIGNED: "true"
      PROSODY_ADMINS: "` + admin + `"
      PROSODY_ADMIN_PASSWORD: "` + adminPassword + `"
    healthcheck:
      test: ["CMD", "entrypoint", "healthcheck"]
      interval: 1s
      timeout: 3s
      retries: 3
      start_period: 60s
`
	if extraYAML != nil {
		overrideYAML += extraYAML(st.ports)
	}
	if err := os.WriteFile(override, []byte(overrideYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cenv := append(os.Environ(),
		"PROSODY_PFE_IMAGE="+testImage(t),
		"POSTGRES_IMAGE="+postgresImage,
		"PROSODY_DOMAIN=localhost",
		"PROSODY_DB_PORT="+strconv.Itoa(st.dbPort),
		"PROSODY_DB_PASSWORD_SECRET="+secret,
		"PROSODY_NOFILE_LIMIT="+strconv.FormatUint(nofileLimit(t), 10),
		"COMPOSE=docker-compose",
	)
	argv := append(command(override), "--project-name", uniqueName(prefix))
	st.run = func(d time.Duration, more ...string) (string, error) {
		return runWithDeadline(d, cenv, argv[0], append(append([]string{}, argv[1:]...), more...)...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := st.run(time.Minute, "logs", "--no-color", "--tail", "60")
			t.Logf("docker-compose logs:\n%s", out)
		}
		if out, err := st.run(3*time.Minute, "down", "--volumes", "--remove-orphans", "--timeout", "30"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})
	return st
}

var postgresBuild struct {
	once sync.Once
	out  string
	err  error
}

// buildPostgresImage builds postgresImage from docker/images/postgres once per test binary;
// every compose test that needs it shares the build (and its failure).
func buildPostgresImage(t *testing.T) {
	t.Helper()
	postgresBuild.once.Do(func() {
		postgresBuild.out, postgresBuild.err = dockerCmd(t, 10*time.Minute, "build", "--quiet", "--network", "host",
			"-t", postgresImage, filepath.Join(repoRoot(t), "docker", "images", "postgres"))
	})
	if postgresBuild.err != nil {
		t.Fatalf("docker build %s: %v\n%s", postgresImage, postgresBuild.err, postgresBuild.out)
	}
}

// nofileLimit is production.yml's descriptor limit for this host: its default 65536, or the
// hard limit this test runs under when that is lower (Docker cannot go above the engine's).
func nofileLimit(t *testing.T) uint64 {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("getrlimit RLIMIT_NOFILE: %v", err)
	}
	return min(rl.Max, 65536)
}
