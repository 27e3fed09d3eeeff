package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// composeConfig runs `docker-compose config` on the given compose/ files (Compose v1, as
// Debian ships it) and returns the merged model.
func composeConfig(t *testing.T, files ...string) map[string]any {
	t.Helper()
	return composeConfigEnv(t, composeTestEnv(t), files...)
}

// composeTestEnv is the environment an operator sets for every file: the domain and the
// Grafana admin password file (monitoring.yml requires it).
func composeTestEnv(t *testing.T) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PROSODY_DOMAIN=xmpp.example.org",
		"GRAFANA_ADMIN_PASSWORD_SECRET=./secrets/grafana_admin_password.txt"}
}

// composeConfigEnv is composeConfig with an explicit environment.
func composeConfigEnv(t *testing.T, env []string, files ...string) map[string]any {
	t.Helper()
	out, errOut, err := tryComposeConfig(t, env, files...)
	if err != nil {
		t.Fatalf("docker-compose config %v: %v\n%s%s", files, err, out, errOut)
	}
	docs := yamlDocs(t, out)
	if len(docs) != 1 {
		t.Fatalf("docker-compose config: want one document, got %d", len(docs))
	}
	return docs[0]
}

func tryComposeConfig(t *testing.T, env []string, files ...string) ([]byte, []byte, error) {
	t.Helper()
	dc := requireTool(t, "docker-compose", "docker-compose")
	root := repoRoot(t)
	args := []string{"--project-name", "prosodypfetest"}
	for _, f := range files {
		args = append(args, "-f", filepath.Join(root, "compose", f+".yml"))
	}
	args = append(args, "config")
	return tryTool(t.TempDir(), env, nil, dc, args...)
}

func TestComposeCombinations(t *testing.T) {
	combos := [][]string{
		{"base"},
		{"base", "ports"},
		{"base", "ports", "development"},
		{"base", "ports", "production"},
		{"base", "ports", "database"},
		{"base", "ports", "database", "production"},
		{"base", "ports", "monitoring", "ports-monitoring"},
		{"base", "ports", "proxy", "ports-proxy"},
		{"base", "ports", "backup"},
		{"base", "ports", "backup", "development"},
		{"base", "ports", "database", "backup", "backup-database", "production"},
		{"base", "ports", "database", "monitoring", "ports-monitoring", "proxy", "ports-proxy", "backup", "backup-database", "production"},
		{"base", "hostnet"},
		{"base", "hostnet", "database", "hostnet-database"},
		{"base", "hostnet", "database", "hostnet-database", "monitoring", "hostnet-monitoring", "proxy", "hostnet-proxy", "backup", "hostnet-backup", "backup-database", "production"},
	}
	for _, c := range combos {
		t.Run(strings.Join(c, "+"), func(t *testing.T) {
			t.Parallel()
			cfg := composeConfig(t, c...)
			p, ok := dig(cfg, "services", "prosody")
			if !ok {
				t.Fatal("no prosody service")
			}
			// Every variable the files set for the entrypoint is one its settings loader knows
			// and accepts (a misspelt name or a bad value stops the container with exit 78).
			for _, svc := range []string{"prosody", "backup"} {
				if _, ok := dig(cfg, "services", svc); !ok {
					continue
				}
				if _, _, err := settings.Load(withSecretStandIns(t, composeServiceEnviron(cfg, svc), t.TempDir())); err != nil {
					t.Errorf("service %s: the entrypoint refuses the environment compose gives it: %v", svc, err)
				}
			}
			if got := digString(p, "environment", "PROSODY_DOMAIN"); got != "xmpp.example.org" {
				t.Errorf("PROSODY_DOMAIN = %q, want the value from the environment", got)
			}
			test, _ := dig(p, "healthcheck", "test")
			if l, _ := test.([]any); len(l) != 3 || l[1] != "entrypoint" || l[2] != "healthcheck" {
				t.Errorf("healthcheck test = %v, want [CMD entrypoint healthcheck]", test)
			}
			hostnet := strings.Contains(strings.Join(c, " "), "hostnet")
			services, _ := dig(cfg, "services")
			for name, s := range services.(map[string]any) {
				// A service that waits for one with a HEALTHCHECK waits for it to pass: started
				// is not ready (nginx in front of a starting Prosody answers 502).
				deps, hasDeps := dig(s, "depends_on")
				depMap, isMap := deps.(map[string]any)
				if hasDeps && !isMap {
					t.Errorf("service %s: depends_on in docker-compose config is %T, want the normalised map", name, deps)
				}
				for dep := range depMap {
					if _, hc := dig(cfg, "services", dep, "healthcheck", "test"); !hc {
						continue
					}
					if got := digString(s, "depends_on", dep, "condition"); got != "service_healthy" {
						t.Errorf("service %s depends_on %s (which has a healthcheck) with condition %q, want service_healthy", name, dep, got)
					}
				}
				mode := digString(s, "network_mode")
				if hostnet && mode != "host" {
					t.Errorf("service %s: network_mode %q, want host with hostnet files", name, mode)
				}
				if _, published := dig(s, "ports"); published && mode == "host" {
					t.Errorf("service %s publishes ports with host networking: Docker refuses that", name)
				}
			}
			if _, proxy := dig(cfg, "services", "proxy"); proxy {
				if got := digString(cfg, "services", "proxy", "depends_on", "prosody", "condition"); got != "service_healthy" {
					t.Errorf("proxy depends_on prosody condition = %q, want service_healthy", got)
				}
			}
		})
	}
}

func TestComposeDatabaseWaitsForHealthyPostgres(t *testing.T) {
	cfg := composeConfig(t, "base", "database")
	if got := digString(cfg, "services", "prosody", "depends_on", "db", "condition"); got != "service_healthy" {
		t.Errorf("prosody depends_on db condition = %q, want service_healthy", got)
	}
	if _, ok := dig(cfg, "services", "db", "healthcheck", "test"); !ok {
		t.Error("db has no healthcheck")
	}
	env, _ := dig(cfg, "services", "prosody", "environment")
	e := env.(map[string]any)
	if e["PROSODY_STORAGE"] != "postgres" {
		t.Errorf("PROSODY_STORAGE = %v, want postgres", e["PROSODY_STORAGE"])
	}
	if _, ok := e["PROSODY_DB_PASSWORD"]; ok {
		t.Error("the database password must come from a secret file, not PROSODY_DB_PASSWORD")
	}
	if e["PROSODY_DB_PASSWORD_FILE"] != "/run/secrets/prosody_db_password" {
		t.Errorf("PROSODY_DB_PASSWORD_FILE = %v, want the compose secret's path", e["PROSODY_DB_PASSWORD_FILE"])
	}
	if got := digString(cfg, "services", "db", "environment", "POSTGRES_PASSWORD_FILE"); got != "/run/secrets/prosody_db_password" {
		t.Errorf("db POSTGRES_PASSWORD_FILE = %q", got)
	}
	if _, ok := dig(cfg, "secrets", "prosody_db_password", "file"); !ok {
		t.Error("no prosody_db_password secret backed by a file")
	}
	// No registry is needed: the default db image is built from the repository.
	if got := digString(cfg, "services", "db", "image"); got != "prosody-pfe-postgres:17" {
		t.Errorf("db image = %q, want the local prosody-pfe-postgres:17 by default", got)
	}
	if ctx := digString(cfg, "services", "db", "build", "context"); ctx == "" {
		t.Error("db has no build context")
	} else if _, err := os.Stat(filepath.Join(ctx, "Dockerfile")); err != nil {
		t.Errorf("db build context %s has no Dockerfile: %v", ctx, err)
	}
}

func TestComposeProductionHardening(t *testing.T) {
	cfg := composeConfig(t, "base", "ports", "production")
	p, _ := dig(cfg, "services", "prosody")
	if ro, _ := dig(p, "read_only"); ro != true {
		t.Errorf("read_only = %v, want true", ro)
	}
	tmpfs, _ := dig(p, "tmpfs")
	var runTmpfs bool
	for _, m := range tmpfs.([]any) {
		if strings.HasPrefix(m.(string), "/run:") || m == "/run" {
			runTmpfs = true
		}
	}
	if !runTmpfs {
		t.Errorf("tmpfs = %v, want /run on a tmpfs (the runtime directory)", tmpfs)
	}
	for _, k := range []string{"mem_limit", "cpus", "pids_limit", "restart"} {
		if _, ok := dig(p, k); !ok {
			t.Errorf("production prosody service lacks %s", k)
		}
	}
	// A root entrypoint signals Prosody (uid 101) only with CAP_KILL; without it docker stop
	// ends in SIGKILL (the compose e2e test shows it, this catches it without Docker).
	if drop, _ := dig(p, "cap_drop"); jsonString(drop) == `["ALL"]` {
		add, _ := dig(p, "cap_add")
		if !strings.Contains(jsonString(add), `"KILL"`) {
			t.Errorf("cap_drop ALL without KILL in cap_add %v: the entrypoint cannot stop Prosody", add)
		}
	}
	if got := digString(p, "restart"); got != "always" {
		t.Errorf("restart = %q, want always", got)
	}
	if got := digString(p, "environment", "PROSODY_ENVIRONMENT"); got != "production" {
		t.Errorf("PROSODY_ENVIRONMENT = %q", got)
	}
}

func TestComposeBackupRunsEntrypointBackup(t *testing.T) {
	cfg := composeConfig(t, "base", "backup")
	b, _ := dig(cfg, "services", "backup")
	cmd, _ := dig(b, "command")
	var joined []string
	for _, a := range cmd.([]any) {
		joined = append(joined, a.(string))
	}
	if !strings.Contains(strings.Join(joined, " "), "entrypoint backup --out") {
		t.Errorf("backup command %v does not run `entrypoint backup --out`", joined)
	}
	if got := digString(b, "environment", "PROSODY_HEALTH_LISTEN"); got != "off" {
		t.Errorf("backup container PROSODY_HEALTH_LISTEN = %q, want off (the server owns :5282)", got)
	}
	vols, _ := dig(b, "volumes")
	var data bool
	for _, v := range vols.([]any) {
		if strings.Contains(digString(v, "target"), "/var/lib/prosody") || strings.Contains(asString(v), ":/var/lib/prosody") {
			data = true
		}
	}
	if !data {
		t.Errorf("backup container does not mount the data volume: %v", vols)
	}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// No Redis: Prosody has no Redis client; docs/deployment.md says so instead.
func TestNoRedisShipped(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "compose", "cache.yml")); err == nil {
		t.Error("compose/cache.yml exists: Prosody uses no Redis, see docs/deployment.md")
	}
	entries, err := os.ReadDir(filepath.Join(root, "compose"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(root, "compose", e.Name()))
		if err != nil || e.IsDir() {
			continue
		}
		if strings.Contains(strings.ToLower(string(data)), "image: redis") {
			t.Errorf("compose/%s runs a Redis image", e.Name())
		}
	}
}
