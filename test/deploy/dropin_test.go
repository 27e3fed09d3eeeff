//go:build docker

package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// dropIn is one container run the way a user of the official image runs it.
type dropIn struct {
	name  string
	ports serverPorts
}

// envArgs turns an environment into docker run --env options, sorted.
func envArgs(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		args = append(args, "--env", k+"="+env[k])
	}
	return args
}

// startDropIn runs the image detached with the data volume, env over the ports' environment
// and extra docker options, waits for Docker's health status, and removes it at the end.
func startDropIn(t *testing.T, img, volume string, ports serverPorts, env map[string]string, extra ...string) dropIn {
	t.Helper()
	c := dropIn{name: uniqueName("pfe-dropin-"), ports: ports}
	all := ports.env()
	for k, v := range env {
		all[k] = v
	}
	args := []string{"run", "--detach", "--name", c.name, "--network", "host", "--volume", volume + ":/var/lib/prosody",
		"--health-interval", "500ms", "--health-timeout", "3s", "--health-retries", "3"}
	args = append(append(append(args, envArgs(all)...), extra...), img)
	mustDocker(t, 60*time.Second, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(containerLogs(t, c.name))
		}
		_, _ = dockerCmd(t, 60*time.Second, "rm", "--force", "--volumes", c.name)
	})
	waitHealthy(t, c.name, 120*time.Second)
	return c
}

func newVolume(t *testing.T) string {
	t.Helper()
	v := uniqueName("pfe-dropin-data-")
	mustDocker(t, 30*time.Second, "volume", "create", v)
	t.Cleanup(func() { _, _ = dockerCmd(t, 30*time.Second, "volume", "rm", "-f", v) })
	return v
}

// As with the official image: `docker run IMAGE register alice localhost PW` makes an account
// (prosodyctl's command, run after the config stages against the rendered config), and a real
// client logs in with it on the server started next on the same volume. Inside that server,
// `docker exec … prosodyctl` acts on the running server's config: `about` names the rendered
// config's directory (not Debian's stock /etc/prosody), `check config` passes, and `shell`
// reaches the running server and lists its hosts.
func TestImageDropInRegisterAndLiveProsodyctl(t *testing.T) {
	img := testImage(t)
	volume := newVolume(t)
	ports := newServerPorts(t)
	env := map[string]string{"PROSODY_DOMAIN": "localhost", "PROSODY_TLS_ALLOW_SELF_SIGNED": "true",
		"PROSODY_FEATURES_ADMIN_SHELL": "true"}
	all := ports.env()
	for k, v := range env {
		all[k] = v
	}
	args := append([]string{"run", "--rm", "--network", "host", "--volume", volume + ":/var/lib/prosody"}, envArgs(all)...)
	out := mustDocker(t, 120*time.Second, append(args, img, "register", "alice", "localhost", "alice-Pw-42")...)
	t.Logf("register: %s", out)

	c := startDropIn(t, img, volume, ports, env)
	if err := xmppLogin(t, ports.C2S, "alice@localhost", "alice-Pw-42"); err != nil {
		t.Fatalf("alice, registered by `docker run IMAGE register`, cannot log in: %v", err)
	}
	if err := xmppLogin(t, ports.C2S, "alice@localhost", "wrong"); err == nil {
		t.Fatal("a wrong password logs in: the login proves nothing")
	}
	about := mustDocker(t, 60*time.Second, "exec", c.name, "prosodyctl", "about")
	if !strings.Contains(about, "/run/prosody-pfe") || strings.Contains(about, "Config directory:   /etc/prosody\n") {
		t.Errorf("docker exec prosodyctl about does not see the rendered config:\n%s", about)
	}
	mustDocker(t, 60*time.Second, "exec", c.name, "prosodyctl", "check", "config")
	hosts := mustDocker(t, 60*time.Second, "exec", c.name, "prosodyctl", "shell", "host", "list")
	if !strings.Contains(hosts, "localhost") {
		t.Errorf("docker exec prosodyctl shell host list:\n%s", hosts)
	}
	// A command routed nowhere useful says so, with exit 2.
	if out, err := dockerCmd(t, 60*time.Second, "run", "--rm", "--network", "host", img, "start"); err == nil || !strings.Contains(out, "docker exec") {
		t.Errorf("docker run IMAGE start: %v\n%s", err, out)
	}
}

// officialStyleConfig is a prosody.cfg.lua as the official image's documentation has users
// write one: modules, a VirtualHost, a MUC component, the console log.
func officialStyleConfig(c2s, s2s int, motd string) string {
	return fmt.Sprintf(`admins = { "admin@localhost" }
modules_enabled = { "disco"; "roster"; "saslauth"; "tls"; "ping"; "register"; "admin_shell"; "motd" }
motd_text = %q
authentication = "internal_hashed"
storage = "internal"
interfaces = { "127.0.0.1" }
c2s_ports = { %d }
s2s_ports = { %d }
http_ports = { }
https_ports = { }
log = { info = "*console" }
certificates = "certs"
VirtualHost "localhost"
Component "conference.localhost" "muc"
`, motd, c2s, s2s)
}

type statusDoc struct {
	ConfigSource string `json:"config_source"`
	ConfigFile   string `json:"config_file"`
	ConfigHash   string `json:"config_hash"`
	LastReload   *struct {
		Outcome string `json:"outcome"`
	} `json:"last_reload"`
}

func readStatus(t *testing.T, port int) (statusDoc, error) {
	var s statusDoc
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(body, &s)
}

// Bring your own config: the file (in a mounted directory) is what Prosody runs, the container
// becomes healthy (/readyz: a real XMPP stream), /status says config_source "file", the admin
// account from PROSODY_ADMINS logs in, and an edit of the file is checked and reloaded.
func TestImageOwnConfigHealthyAndReloads(t *testing.T) {
	img := testImage(t)
	volume := newVolume(t)
	ports := newServerPorts(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(file, []byte(officialStyleConfig(ports.C2S, ports.S2S, "first")), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startDropIn(t, img, volume, ports, map[string]string{
		"PROSODY_CONFIG_FILE": "/etc/prosody-own/prosody.cfg.lua", "PROSODY_DOMAIN": "localhost",
		"PROSODY_TLS_ALLOW_SELF_SIGNED": "true", "PROSODY_ADMINS": "admin@localhost", "PROSODY_ADMIN_PASSWORD": "admin-Pw-7",
		"PROSODY_WATCH_DEBOUNCE": "200ms",
	}, "--volume", dir+":/etc/prosody-own:ro")
	st, err := readStatus(t, ports.Health)
	if err != nil || st.ConfigSource != "file" || st.ConfigFile != "/etc/prosody-own/prosody.cfg.lua" {
		t.Fatalf("/status: %+v, %v", st, err)
	}
	wait.Until(t, 60*time.Second, "the admin account of PROSODY_ADMINS to log in on a bring-your-own config", func() error {
		return xmppLogin(t, ports.C2S, "admin@localhost", "admin-Pw-7")
	})
	live := mustDocker(t, 30*time.Second, "exec", c.name, "cat", "/run/prosody-pfe/prosody.cfg.lua")
	if !strings.Contains(live, `motd_text = "first"`) {
		t.Fatalf("the running config is not the file:\n%s", live)
	}
	if err := os.WriteFile(file, []byte(officialStyleConfig(ports.C2S, ports.S2S, "second")), 0o644); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 60*time.Second, "the edit to be applied", func() error {
		last, err := readStatus(t, ports.Health)
		if err != nil {
			return err
		}
		if last.ConfigHash == st.ConfigHash || last.LastReload == nil || last.LastReload.Outcome != "applied" {
			return fmt.Errorf("/status: %+v", last)
		}
		return nil
	})
	live = mustDocker(t, 30*time.Second, "exec", c.name, "prosodyctl", "shell", "config", "get", "motd_text")
	if !strings.Contains(live, "second") {
		t.Errorf("the running Prosody's motd_text after the edit: %s", live)
	}
	waitHealthy(t, c.name, 60*time.Second)
}

// A data volume that another image's prosody user owns (uid 100 here: what Debian's package
// gives the prosody user on a fresh debian:trixie-slim, as in the official image; ours is 101),
// with an account in it in the official image's default internal storage, is adopted at start:
// the server comes up on it and the account logs in.
func TestImageAdoptsOfficialDataVolume(t *testing.T) {
	img := testImage(t)
	volume := newVolume(t)
	ports := newServerPorts(t)
	all := ports.env()
	all["PROSODY_DOMAIN"] = "localhost"
	all["PROSODY_STORAGE"] = "internal"
	all["PROSODY_TLS_ALLOW_SELF_SIGNED"] = "true"
	args := append([]string{"run", "--rm", "--network", "host", "--volume", volume + ":/var/lib/prosody"}, envArgs(all)...)
	mustDocker(t, 120*time.Second, append(args, img, "register", "bob", "localhost", "bob-Pw-9")...)
	// As the official image left it: every file its prosody user's.
	mustDocker(t, 60*time.Second, "run", "--rm", "--network", "host", "--volume", volume+":/var/lib/prosody", img,
		"chown", "-R", "100:100", "/var/lib/prosody")

	c := startDropIn(t, img, volume, ports, map[string]string{"PROSODY_DOMAIN": "localhost", "PROSODY_STORAGE": "internal",
		"PROSODY_TLS_ALLOW_SELF_SIGNED": "true"})
	if err := xmppLogin(t, ports.C2S, "bob@localhost", "bob-Pw-9"); err != nil {
		t.Fatalf("bob, whose account the official image's uid owned, cannot log in: %v", err)
	}
	owners := mustDocker(t, 30*time.Second, "exec", c.name, "sh", "-c", "find /var/lib/prosody -uid 100 | wc -l")
	if strings.TrimSpace(owners) != "0" {
		t.Errorf("%s entries still belong to uid 100", owners)
	}
	if logs := containerLogs(t, c.name); !strings.Contains(logs, "data directory adopted") {
		t.Errorf("no log line says the data directory was adopted:\n%s", logs)
	}
}
