//go:build docker

package deploy

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stopGrace is the `docker stop` grace period the tests give; the entrypoint must exit 0 well
// within it (its own PROSODY_STOP_TIMEOUT is 10s), never by Docker's SIGKILL.
const stopGrace = 30 * time.Second

// imageRun is one way an operator runs the image.
type imageRun struct {
	name string
	args []string // docker run options beyond network, env and the data volume
	// healthy is how long startImage waits for Docker's health status; zero means 90s.
	healthy time.Duration
}

// The ways the image must work: as root (the entrypoint drops to prosody), with a read-only
// root filesystem, as the prosody user, and both (the Kubernetes security context). A tmpfs on
// /run is root's 0755 unless told otherwise, so a non-root read-only run names the owner.
var imageRuns = []imageRun{
	{name: "root"},
	{name: "read-only", args: []string{"--read-only", "--tmpfs", "/run"}},
	{name: "user", args: []string{"--user", "101:101"}},
	{name: "read-only-user", args: []string{"--read-only", "--tmpfs", "/run:uid=101,gid=101,mode=0755", "--user", "101:101"}},
}

// For each way of running it: Docker's HEALTHCHECK reports healthy, a real XMPP client logs in
// with the admin account the entrypoint created, `docker stop` ends with exit 0 inside the
// grace period, and a new container on the same data volume still has the account (with its
// first password: the second container's PROSODY_ADMIN_PASSWORD does not overwrite it).
func TestImageRunsLogsInStopsAndKeepsData(t *testing.T) {
	img := testImage(t)
	for _, r := range imageRuns {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			volume := uniqueName("pfe-test-data-")
			mustDocker(t, 30*time.Second, "volume", "create", volume)
			t.Cleanup(func() { _, _ = dockerCmd(t, 30*time.Second, "volume", "rm", "-f", volume) })

			const jid, first, second = "admin@localhost", "first-pass-Aq7", "second-pass-Zx9"
			c1 := startImage(t, img, r, volume, jid, first)
			if err := xmppLogin(t, c1.ports.C2S, jid, first); err != nil {
				t.Fatalf("login as %s on a fresh container: %v\n%s", jid, err, containerLogs(t, c1.name))
			}
			if err := xmppLogin(t, c1.ports.C2S, jid, "not-the-password"); err == nil {
				t.Fatalf("login with a wrong password succeeded: the login check proves nothing")
			}
			// Prosody's server never applies its own `umask` option; the entrypoint starts it
			// with it (027 by default), under Docker's default seccomp profile too, and keeps
			// its own.
			if got := processUmasks(t, c1.name); got["prosody"] != "0027" || got["entrypoint"] != "0022" {
				t.Errorf("umasks in the container = %v, want prosody 0027 and the entrypoint (pid 1) its own 0022", got)
			}
			// The image carries what `entrypoint backup` needs (sqlite3 for the online copy),
			// and it works however the container runs.
			mustDocker(t, 60*time.Second, "exec", c1.name, "entrypoint", "backup", "--out", "/var/lib/prosody/image-test-backup.tar.gz")
			mustDocker(t, 60*time.Second, "exec", c1.name, "entrypoint", "restore", "--verify", "/var/lib/prosody/image-test-backup.tar.gz")
			stopAndCheck(t, c1.name)
			mustDocker(t, 60*time.Second, "rm", "-v", c1.name)

			c2 := startImage(t, img, r, volume, jid, second)
			if err := xmppLogin(t, c2.ports.C2S, jid, first); err != nil {
				t.Fatalf("after re-creating the container on volume %s, %s cannot log in with its password: %v\n%s", volume, jid, err, containerLogs(t, c2.name))
			}
			if err := xmppLogin(t, c2.ports.C2S, jid, second); err == nil {
				t.Errorf("the second container's PROSODY_ADMIN_PASSWORD replaced the existing account's password")
			}
			stopAndCheck(t, c2.name)
		})
	}
}

// The image's metadata that orchestrators and the tests above rely on.
func TestImageMetadata(t *testing.T) {
	img := testImage(t)
	var cfg []struct {
		Config struct {
			Entrypoint  []string
			Cmd         []string
			StopSignal  string
			Healthcheck struct{ Test []string }
			Volumes     map[string]struct{}
			Labels      map[string]string
			User        string
		}
	}
	if err := json.Unmarshal([]byte(mustDocker(t, 30*time.Second, "image", "inspect", img)), &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("docker image inspect %s: %v", img, err)
	}
	c := cfg[0].Config
	check := func(what string, got, want any) {
		t.Helper()
		if g, w := jsonString(got), jsonString(want); g != w {
			t.Errorf("%s = %s, want %s", what, g, w)
		}
	}
	check("Entrypoint", c.Entrypoint, []string{"entrypoint"})
	check("Cmd", c.Cmd, []string{"prosody"})
	check("Healthcheck", c.Healthcheck.Test, []string{"CMD", "entrypoint", "healthcheck"})
	check("StopSignal", c.StopSignal, "SIGTERM")
	check("User", c.User, "")
	var vols []string
	for v := range c.Volumes {
		vols = append(vols, v)
	}
	sort.Strings(vols)
	check("Volumes", vols, []string{"/etc/prosody-pfe/custom", "/etc/prosody/certs", "/var/lib/prosody"})
	// The license, as the repository's LICENSE file says (MIT, like Prosody and tini).
	check("label org.opencontainers.image.licenses", c.Labels["org.opencontainers.image.licenses"], "MIT")
	if base := c.Labels["org.opencontainers.image.base.name"]; !strings.HasPrefix(base, "debian:") || strings.Contains(base, ":-") {
		t.Errorf("label org.opencontainers.image.base.name = %q, want debian:<suite>-slim", base)
	}
	// The image's Prosody is 13 (asked as the prosody user: Prosody refuses root), and the
	// entrypoint is the binary this run built.
	// prosodyctl's `about` passes through (as in the official image), after the config stages:
	// development makes the self-signed certificate they need.
	out := mustDocker(t, 60*time.Second, "run", "--rm", "--network", "host", "--user", "101:101", "--env", "PROSODY_ENVIRONMENT=development", img, "about")
	if !strings.Contains(out, "Prosody 13.") {
		t.Errorf("prosodyctl about in the image:\n%s", out)
	}
	out = mustDocker(t, 60*time.Second, "run", "--rm", "--network", "host", img, "version")
	if !strings.HasPrefix(out, "entrypoint ") {
		t.Errorf("entrypoint version in the image: %q", out)
	}
}

type runningImage struct {
	name  string
	ports serverPorts
}

// startImage runs the image detached on the host network with the data volume, waits for
// Docker's health status to be healthy, and removes the container when the test ends.
func startImage(t *testing.T, img string, r imageRun, volume, adminJID, adminPassword string) runningImage {
	t.Helper()
	c := runningImage{name: uniqueName("pfe-test-"), ports: newServerPorts(t)}
	args := []string{"run", "--detach", "--name", c.name, "--network", "host",
		"--volume", volume + ":/var/lib/prosody",
		// Docker's own health check, run often so the test waits little.
		"--health-interval", "500ms", "--health-timeout", "3s", "--health-retries", "3",
		"--stop-timeout", strconv.Itoa(int(stopGrace.Seconds())),
	}
	env := c.ports.env()
	env["PROSODY_DOMAIN"] = "localhost"
	env["PROSODY_ADMINS"] = adminJID
	env["PROSODY_ADMIN_PASSWORD"] = adminPassword
	env["PROSODY_TLS_ALLOW_SELF_SIGNED"] = "true"
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--env", k+"="+env[k])
	}
	args = append(args, r.args...)
	args = append(args, img)
	mustDocker(t, 60*time.Second, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(containerLogs(t, c.name))
		}
		_, _ = dockerCmd(t, 60*time.Second, "rm", "--force", "--volumes", c.name)
	})
	within := 90 * time.Second
	if r.healthy > 0 {
		within = r.healthy
	}
	d := waitHealthy(t, c.name, within)
	t.Logf("%s (%s): healthy %s after docker run returned", c.name, r.name, d.Round(time.Millisecond))
	return c
}

// stopAndCheck runs `docker stop` and asserts the container exited 0 by itself, inside the
// grace period (Docker's SIGKILL would show as 137).
func stopAndCheck(t *testing.T, container string) {
	t.Helper()
	start := time.Now()
	mustDocker(t, stopGrace+30*time.Second, "stop", "--time", strconv.Itoa(int(stopGrace.Seconds())), container)
	took := time.Since(start)
	out := mustDocker(t, 10*time.Second, "inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", container)
	if out != "0 false" {
		t.Fatalf("after docker stop, exit code and OOMKilled = %q, want \"0 false\" (took %s)\n%s", out, took, containerLogs(t, container))
	}
	if took >= stopGrace {
		t.Fatalf("docker stop took %s, not inside the %s grace period", took, stopGrace)
	}
	t.Logf("%s: docker stop -> exit 0 in %s", container, took.Round(time.Millisecond))
}

// The image carries no package manager caches: apt's lists and its binary caches
// (/var/cache/apt/*.bin) are ~90 MB that no container reads.
func TestImageHasNoPackageCaches(t *testing.T) {
	img := testImage(t)
	out := mustDocker(t, 60*time.Second, "run", "--rm", "--network", "host", "--entrypoint", "find", img,
		"/var/lib/apt/lists", "/var/cache/apt", "-type", "f", "-size", "+0")
	if out != "" {
		t.Errorf("package caches left in the image:\n%s", out)
	}
}

// processUmasks reads, inside the container, the umask of pid 1 (the
// entrypoint) and of the process running /usr/bin/prosody.
func processUmasks(t *testing.T, container string) map[string]string {
	t.Helper()
	const script = `for p in /proc/[0-9]*; do
  if tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q '^[^ ]*lua[^ ]* /usr/bin/prosody'; then echo "prosody $(sed -n 's/^Umask:[[:space:]]*//p' "$p/status")"; fi
done
echo "entrypoint $(sed -n 's/^Umask:[[:space:]]*//p' /proc/1/status)"`
	out := mustDocker(t, 30*time.Second, "exec", container, "sh", "-c", script)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, umask, ok := strings.Cut(line, " "); ok {
			got[name] = umask
		}
	}
	return got
}
