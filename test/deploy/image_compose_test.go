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
	img := testImage(t)
	compose := requireTool(t, "docker-compose", "docker-compose")
	root := repoRoot(t)
	buildPostgresImage(t)

	dir := t.TempDir()
	secret := filepath.Join(dir, "db_password.txt")
	if err := os.WriteFile(secret, []byte("db-pass-"+uniqueName("")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := newServerPorts(t)
	dbPort := freePort(t)
	const jid, password = "admin@localhost", "compose-admin-Kp3"
	var env strings.Builder
	for k, v := range ports.env() {
		fmt.Fprintf(&env, "      %s: %q\n", k, v)
	}
	override := filepath.Join(dir, "test-override.yml")
	// The test's own layer: free ports on 127.0.0.1, a self-signed certificate for localhost
	// (production refuses one unless allowed), the admin account, and a fast health check.
	overrideYAML := `services:
  prosody:
    environment:
` + env.String() + `      PROSODY_TLS_ALLOW_SELF_SIGNED: "true"
      PROSODY_ADMINS: "` + jid + `"
      PROSODY_ADMIN_PASSWORD: "` + password + `"
    healthcheck:
      test: ["CMD", "entrypoint", "healthcheck"]
      interval: 1s
      timeout: 3s
      retries: 3
      start_period: 60s
`
	if err := os.WriteFile(override, []byte(overrideYAML), 0o644); err != nil {
		t.Fatal(err)
	}

	project := uniqueName("pfetest")
	args := []string{"--project-name", project}
	for _, f := range []string{"base", "database", "production", "hostnet", "hostnet-database"} {
		args = append(args, "--file", filepath.Join(root, "compose", f+".yml"))
	}
	args = append(args, "--file", override)
	cenv := append(os.Environ(),
		"PROSODY_PFE_IMAGE="+img,
		"POSTGRES_IMAGE="+postgresImage,
		"PROSODY_DOMAIN=localhost",
		"PROSODY_DB_PORT="+strconv.Itoa(dbPort),
		"PROSODY_DB_PASSWORD_SECRET="+secret,
		"PROSODY_NOFILE_LIMIT="+strconv.FormatUint(nofileLimit(t), 10),
	)
	run := func(d time.Duration, more ...string) (string, error) {
		return runWithDeadline(d, cenv, compose, append(append([]string{}, args...), more...)...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := run(time.Minute, "logs", "--no-color", "--tail", "60")
			t.Logf("docker-compose logs:\n%s", out)
		}
		if out, err := run(3*time.Minute, "down", "--volumes", "--remove-orphans", "--timeout", "30"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})

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
