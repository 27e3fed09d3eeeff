package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// composeScript runs docker/scripts/compose.sh with env and returns stdout; a failure fails the
// test with both outputs.
func composeScript(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	root := repoRoot(t)
	return runTool(t, t.TempDir(), env, nil, "sh", append([]string{filepath.Join(root, "docker", "scripts", "compose.sh")}, args...)...)
}

// The development file's domain default is reachable (base.yml no longer refuses first), and
// production still refuses to start without PROSODY_DOMAIN, naming it.
func TestComposeDomainDefaultsInDevelopmentRequiredInProduction(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cfg := composeConfigEnv(t, env, "base", "ports", "backup", "development")
	for _, svc := range []string{"prosody", "backup"} {
		if got := digString(cfg, "services", svc, "environment", "PROSODY_DOMAIN"); got != "localhost" {
			t.Errorf("development without PROSODY_DOMAIN: %s has PROSODY_DOMAIN %q, want development.yml's default localhost", svc, got)
		}
	}
	_, errOut, err := tryComposeConfig(t, env, "base", "ports", "production")
	if err == nil || !strings.Contains(string(errOut), "set PROSODY_DOMAIN") {
		t.Errorf("production without PROSODY_DOMAIN: err %v, stderr %q; want a refusal naming PROSODY_DOMAIN", err, errOut)
	}
}

// Whatever compose.sh combines, the backup service stores where the server stores: the same
// PROSODY_STORAGE, the same PROSODY_DB_* and the password secret, and it starts only once the
// server (and the database) is healthy.
func TestComposeBackupHasTheServersStorage(t *testing.T) {
	for _, addons := range [][]string{
		{"backup"},
		{"database", "backup"},
		{"database", "backup", "hostnet"},
		{"database", "monitoring", "proxy", "backup"},
	} {
		for _, envname := range []string{"production", "development"} {
			t.Run(envname+"+"+strings.Join(addons, "+"), func(t *testing.T) {
				t.Parallel()
				args := append(append([]string{envname}, addons...), "--", "--project-name", "prosodypfetest", "config")
				docs := yamlDocs(t, composeScript(t, composeTestEnv(t), args...))
				cfg := docs[0]
				p, _ := dig(cfg, "services", "prosody", "environment")
				b, _ := dig(cfg, "services", "backup", "environment")
				pe, be := p.(map[string]any), b.(map[string]any)
				if pe["PROSODY_STORAGE"] != be["PROSODY_STORAGE"] {
					t.Errorf("PROSODY_STORAGE: server %v, backup %v: the backup must store where the server does", pe["PROSODY_STORAGE"], be["PROSODY_STORAGE"])
				}
				for k, v := range pe {
					if strings.HasPrefix(k, "PROSODY_DB_") && be[k] != v {
						t.Errorf("%s: server %v, backup %v", k, v, be[k])
					}
				}
				if pe["PROSODY_STORAGE"] == "postgres" && !strings.Contains(jsonString(dig1(cfg, "services", "backup", "secrets")), "prosody_db_password") {
					t.Error("backup lacks the prosody_db_password secret")
				}
				if got := digString(cfg, "services", "backup", "depends_on", "prosody", "condition"); got != "service_healthy" {
					t.Errorf("backup depends_on prosody condition = %q, want service_healthy", got)
				}
				if _, ok := dig(cfg, "services", "db"); ok {
					if got := digString(cfg, "services", "backup", "depends_on", "db", "condition"); got != "service_healthy" {
						t.Errorf("backup depends_on db condition = %q, want service_healthy", got)
					}
				}
			})
		}
	}
}

func dig1(v any, path ...any) any {
	r, _ := dig(v, path...)
	return r
}

// compose.sh runs Compose v2 (`docker compose`) when the docker CLI has it. Debian ships no
// Compose v2, so a stand-in `docker` (a shell script that says it has `compose` and records its
// arguments) plays the v2 CLI here; the v1 fallback is the real docker-compose.
func TestComposeScriptPicksV2ThenV1(t *testing.T) {
	requireTool(t, "docker-compose", "docker-compose")
	bin := t.TempDir()
	record := filepath.Join(t.TempDir(), "args")
	stub := "#!/bin/sh\n[ \"$1\" = compose ] || exit 1\nprintf '%s\\n' \"$*\" >> " + record + "\n"
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	env := composeTestEnv(t)
	env[0] = "PATH=" + bin + ":" + os.Getenv("PATH")
	if got := strings.TrimSpace(string(composeScript(t, env, "--which"))); got != "docker compose" {
		t.Errorf("compose.sh --which with Compose v2 present = %q, want \"docker compose\"", got)
	}
	composeScript(t, env, "production", "database", "--", "config")
	b, _ := os.ReadFile(record)
	if !strings.Contains(string(b), "compose -f ") || !strings.Contains(string(b), "database.yml") || !strings.HasSuffix(strings.TrimSpace(string(b)), " config") {
		t.Errorf("compose.sh did not run `docker compose -f … config`; the v2 CLI saw:\n%s", b)
	}

	// A docker CLI without the compose plugin (the stand-in refuses it): docker-compose.
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(composeScript(t, env, "--which"))); got != "docker-compose" {
		t.Errorf("compose.sh --which without Compose v2 = %q, want docker-compose", got)
	}
}

// Grafana never starts with admin/admin: monitoring.yml refuses without the password file,
// and hands Grafana the file (a secret), never the password in an env value.
func TestComposeGrafanaAdminPasswordRequired(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PROSODY_DOMAIN=xmpp.example.org"}
	_, errOut, err := tryComposeConfig(t, env, "base", "ports", "monitoring")
	if err == nil || !strings.Contains(string(errOut), "GRAFANA_ADMIN_PASSWORD_SECRET") {
		t.Errorf("monitoring without GRAFANA_ADMIN_PASSWORD_SECRET: err %v, stderr %q; want a refusal naming it", err, errOut)
	}
	cfg := composeConfig(t, "base", "ports", "monitoring")
	g, _ := dig(cfg, "services", "grafana", "environment")
	ge := g.(map[string]any)
	if ge["GF_SECURITY_ADMIN_PASSWORD__FILE"] != "/run/secrets/grafana_admin_password" {
		t.Errorf("GF_SECURITY_ADMIN_PASSWORD__FILE = %v, want the secret's path", ge["GF_SECURITY_ADMIN_PASSWORD__FILE"])
	}
	if _, ok := ge["GF_SECURITY_ADMIN_PASSWORD"]; ok {
		t.Error("GF_SECURITY_ADMIN_PASSWORD is set: the password belongs in the secret file")
	}
	if f := digString(cfg, "secrets", "grafana_admin_password", "file"); !strings.HasSuffix(f, "secrets/grafana_admin_password.txt") {
		t.Errorf("grafana_admin_password secret file = %q", f)
	}
}

// The Alertmanager config passes amtool, Prometheus sends to the Alertmanager service, and the
// service loads the shipped config on the port prometheus.yml names.
func TestAlertmanagerConfigAndWiring(t *testing.T) {
	amtool := requireTool(t, "amtool", "prometheus-alertmanager")
	root := repoRoot(t)
	out := runTool(t, root, os.Environ(), nil, amtool, "check-config", "docker/configs/alertmanager/alertmanager.yml")
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config printed no SUCCESS:\n%s", out)
	}
	if got := promAlertTargets(t, root); jsonString(got) != `["alertmanager:9093"]` {
		t.Errorf("prometheus.yml alerting targets = %v, want [alertmanager:9093]", got)
	}
	cfg := composeConfig(t, "base", "hostnet", "monitoring", "hostnet-monitoring")
	am, ok := dig(cfg, "services", "alertmanager")
	if !ok {
		t.Fatal("monitoring.yml has no alertmanager service")
	}
	cmd := jsonString(dig1(am, "command"))
	for _, want := range []string{"--config.file=/etc/alertmanager/alertmanager.yml", "--web.listen-address=:9093"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("alertmanager command %s lacks %s", cmd, want)
		}
	}
	var mounted bool
	for _, v := range dig1(am, "volumes").([]any) {
		s := asString(v) + digString(v, "source") + " " + digString(v, "target")
		mounted = mounted || strings.Contains(s, "docker/configs/alertmanager/alertmanager.yml")
	}
	if !mounted {
		t.Errorf("alertmanager does not mount docker/configs/alertmanager/alertmanager.yml: %v", dig1(am, "volumes"))
	}
	// docker-compose config prints extra_hosts as a map.
	if got := digString(cfg, "services", "prometheus", "extra_hosts", "alertmanager"); got != "127.0.0.1" {
		t.Error("with host networking, prometheus cannot resolve alertmanager (extra_hosts)")
	}
}

func promAlertTargets(t *testing.T, root string) []any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docker/configs/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	targets, _ := dig(yamlDocs(t, data)[0], "alerting", "alertmanagers", 0, "static_configs", 0, "targets")
	l, _ := targets.([]any)
	return l
}

// Debian's Prometheus with the shipped prometheus.yml (its alertmanager target pointed at a
// free port, an always-firing rule in place of the rule files) delivers the alert to Debian's
// Alertmanager running the shipped alertmanager.yml, which routes it to the default receiver.
// Before, prometheus.yml had no alerting section and every alert stayed in Prometheus.
func TestPrometheusDeliversAlertsToAlertmanager(t *testing.T) {
	promBin := requireTool(t, "prometheus", "prometheus")
	amBin := requireTool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	root := repoRoot(t)
	ports, err := entrypointtest.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	amAddr, promAddr := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	startDaemon(t, "alertmanager", amBin, "--config.file="+filepath.Join(root, "docker/configs/alertmanager/alertmanager.yml"),
		"--storage.path="+t.TempDir(), "--web.listen-address="+amAddr, "--cluster.listen-address=", "--log.level=warn")

	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(root, "docker/configs/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := yamlDocs(t, data)[0]
	targets, ok := dig(cfg, "alerting", "alertmanagers", 0, "static_configs", 0, "targets")
	if !ok || jsonString(targets) != `["alertmanager:9093"]` {
		t.Fatalf("prometheus.yml alerting targets = %v, want [alertmanager:9093]", targets)
	}
	sc := dig1(cfg, "alerting", "alertmanagers", 0, "static_configs", 0).(map[string]any)
	sc["targets"] = []any{amAddr}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["scrape_configs"] = []any{}
	rules := filepath.Join(dir, "wiring.rules.json")
	if err := os.WriteFile(rules, []byte(`{"groups":[{"name":"wiring","rules":[{"alert":"AlertmanagerWiring","expr":"vector(1)","labels":{"service":"prosody"}}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg["rule_files"] = []any{rules}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "prometheus", promBin, "--config.file="+cfgPath, "--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+promAddr, "--log.level=warn",
		// The first evaluation may come before the Alertmanager is discovered (that alert is
		// dropped); resend at once instead of after the default minute.
		"--rules.alert.resend-delay=1s")

	client := &http.Client{Timeout: 5 * time.Second}
	wait.Until(t, 60*time.Second, "Alertmanager to hold Prometheus' alert, routed to the default receiver", func() error {
		resp, err := client.Get("http://" + amAddr + "/api/v2/alerts")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var alerts []struct {
			Labels    map[string]string `json:"labels"`
			Receivers []struct {
				Name string `json:"name"`
			} `json:"receivers"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
			return err
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "AlertmanagerWiring" {
				if len(a.Receivers) != 1 || a.Receivers[0].Name != "default" {
					return wait.Abort(fmt.Errorf("alert routed to %v, want the default receiver", a.Receivers))
				}
				return nil
			}
		}
		return fmt.Errorf("%d alerts, none AlertmanagerWiring", len(alerts))
	})
}

// startDaemon runs a long-running program in its own process group with its output kept, and
// stops it (SIGTERM, then SIGKILL after 10s) when the test ends, logging its output on failure.
func startDaemon(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	var log entrypointtest.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stopGroup(cmd, done, 10*time.Second)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, lastBytes(log.String(), 4000))
		}
	})
}
