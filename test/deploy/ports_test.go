package deploy

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// entrypointPorts are the ports the entrypoint (and the Prosody it configures) listens on for
// the given environment, as its own settings loader derives them: the one source the shipped
// Dockerfile, compose files and Prometheus config are checked against.
func entrypointPorts(t *testing.T, environ []string) map[string]int {
	t.Helper()
	st, _, err := settings.Load(environ)
	if err != nil {
		t.Fatalf("the entrypoint refuses the environment %q: %v", environ, err)
	}
	_, health, err := net.SplitHostPort(st.HealthListen)
	if err != nil {
		t.Fatalf("PROSODY_HEALTH_LISTEN %q: %v", st.HealthListen, err)
	}
	hp, err := strconv.Atoi(health)
	if err != nil {
		t.Fatalf("PROSODY_HEALTH_LISTEN %q: port %q: %v", st.HealthListen, health, err)
	}
	return map[string]int{"c2s": st.C2SPort, "s2s": st.S2SPort, "http": st.HTTPPort, "https": st.HTTPSPort, "health": hp}
}

// composeServiceEnviron is the environment compose gives a service, as `docker-compose config`
// merges it; a bare name (null: the operator's value passed through) is left unset, as in a
// container whose operator did not set it.
func composeServiceEnviron(cfg map[string]any, service string) []string {
	envAny, _ := dig(cfg, "services", service, "environment")
	envMap, _ := envAny.(map[string]any)
	var environ []string
	for _, k := range slices.Sorted(maps.Keys(envMap)) {
		if v := envMap[k]; v != nil {
			environ = append(environ, k+"="+asString(v))
		}
	}
	return environ
}

// withSecretStandIns replaces the value of every *_FILE variable (a compose secret's path in
// the container) with a file in dir holding a stand-in secret, so the settings loader can read it.
func withSecretStandIns(t *testing.T, environ []string, dir string) []string {
	t.Helper()
	out := slices.Clone(environ)
	for i, kv := range out {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasSuffix(name, "_FILE") {
			continue
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("stand-in-secret-7\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out[i] = name + "=" + f
	}
	return out
}

// The image EXPOSEs exactly the ports the entrypoint listens on by default.
func TestDockerfileExposesTheDefaultPorts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^EXPOSE (.+)$`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("Dockerfile has no EXPOSE line")
	}
	var want []int
	for _, p := range entrypointPorts(t, []string{"PROSODY_DOMAIN=localhost"}) {
		want = append(want, p)
	}
	slices.Sort(want)
	var got []int
	for _, f := range strings.Fields(m[1]) {
		p, err := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
		if err != nil {
			t.Fatalf("EXPOSE %q: %v", f, err)
		}
		got = append(got, p)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Dockerfile EXPOSE %v; the entrypoint listens on %v by default", got, want)
	}
}

// ports.yml publishes every port the prosody service listens on, and proxy.yml's default
// upstream is its plain HTTP port, both as the settings loader derives them from the
// environment compose gives the service.
func TestComposePortsAreTheEntrypoints(t *testing.T) {
	cfg := composeConfig(t, "base", "ports", "proxy", "ports-proxy")
	ports := entrypointPorts(t, composeServiceEnviron(cfg, "prosody"))

	published := map[int]bool{}
	list, _ := dig(cfg, "services", "prosody", "ports")
	for _, p := range list.([]any) {
		switch p := p.(type) {
		case map[string]any: // long syntax
			if n, err := strconv.Atoi(fmt.Sprint(p["target"])); err == nil {
				published[n] = true
			}
		case string: // short syntax: [ip:][published:]target[/proto]
			f := strings.Split(strings.SplitN(p, "/", 2)[0], ":")
			if n, err := strconv.Atoi(f[len(f)-1]); err == nil {
				published[n] = true
			}
		}
	}
	for name, port := range ports {
		if !published[port] {
			t.Errorf("compose/ports.yml does not publish the %s port %d (published targets: %v)", name, port, published)
		}
	}

	if got, want := digString(cfg, "services", "proxy", "environment", "PROSODY_HTTP_UPSTREAM"), "prosody:"+strconv.Itoa(ports["http"]); got != want {
		t.Errorf("compose/proxy.yml PROSODY_HTTP_UPSTREAM defaults to %q; Prosody's plain HTTP port is %q", got, want)
	}
}
