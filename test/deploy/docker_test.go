//go:build docker

package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
)

// The image tests run only with `-tags docker`, from scripts/test-docker (make test-docker),
// which brings up a Docker engine, builds the image and names it in imageEnv.
const imageEnv = "PROSODY_PFE_TEST_IMAGE"

// testImage is the image under test; without it the test fails (never skips) with the command
// that provides it.
func testImage(t *testing.T) string {
	t.Helper()
	img := os.Getenv(imageEnv)
	if img == "" {
		t.Fatalf("%s is not set: run `make test-docker` (scripts/test-docker builds the image, starts a Docker engine and runs these tests)", imageEnv)
	}
	requireTool(t, "docker", "docker.io")
	if _, err := dockerCmd(t, 30*time.Second, "image", "inspect", img); err != nil {
		t.Fatalf("image %s not found in the engine at DOCKER_HOST=%q: %v (run `make test-docker`)", img, os.Getenv("DOCKER_HOST"), err)
	}
	return img
}

// dockerCmd runs the docker CLI with a deadline and returns its combined output.
func dockerCmd(t *testing.T, d time.Duration, args ...string) (string, error) {
	t.Helper()
	return runWithDeadline(d, nil, "docker", args...)
}

func runWithDeadline(d time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = env
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// mustDocker is dockerCmd that fails the test on an error.
func mustDocker(t *testing.T, d time.Duration, args ...string) string {
	t.Helper()
	out, err := dockerCmd(t, d, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// uniqueName is a container/volume/project name no other test run uses.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// freePort returns a TCP port free on 127.0.0.1, below the ephemeral range
// and never handed out twice (entrypointtest.FreePorts).
func freePort(t *testing.T) int {
	t.Helper()
	p, err := entrypointtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

// serverPorts are the host ports one container's Prosody and entrypoint listen on (host network).
type serverPorts struct {
	C2S, S2S, HTTP, HTTPS, Health int
}

func newServerPorts(t *testing.T) serverPorts {
	return serverPorts{C2S: freePort(t), S2S: freePort(t), HTTP: freePort(t), HTTPS: freePort(t), Health: freePort(t)}
}

// env is the PROSODY_* environment that binds every listener to 127.0.0.1 on these ports.
func (p serverPorts) env() map[string]string {
	return map[string]string{
		"PROSODY_INTERFACES":    "127.0.0.1",
		"PROSODY_C2S_PORT":      strconv.Itoa(p.C2S),
		"PROSODY_S2S_PORT":      strconv.Itoa(p.S2S),
		"PROSODY_HTTP_PORT":     strconv.Itoa(p.HTTP),
		"PROSODY_HTTPS_PORT":    strconv.Itoa(p.HTTPS),
		"PROSODY_HEALTH_LISTEN": "127.0.0.1:" + strconv.Itoa(p.Health),
	}
}

// waitHealthy polls Docker's own health status of a container (set by the image's
// HEALTHCHECK) until it is "healthy"; it fails the test when the container stops first, when
// Docker reports "unhealthy", or after d.
func waitHealthy(t *testing.T, container string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	for {
		out, err := dockerCmd(t, 10*time.Second, "inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", container)
		if err != nil {
			t.Fatalf("docker inspect %s: %v\n%s", container, err, out)
		}
		state, health, _ := strings.Cut(out, " ")
		switch {
		case health == "healthy":
			return time.Since(start)
		case health == "none":
			t.Fatalf("container %s has no health check: the image lost its HEALTHCHECK", container)
		case state != "running":
			t.Fatalf("container %s is %s before it became healthy\n%s", container, state, containerLogs(t, container))
		case health == "unhealthy":
			t.Fatalf("container %s is unhealthy\n%s", container, containerLogs(t, container))
		case time.Now().After(deadline):
			t.Fatalf("container %s not healthy after %s (state %s, health %s)\n%s", container, d, state, health, containerLogs(t, container))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containerLogs(t *testing.T, container string) string {
	t.Helper()
	out, _ := dockerCmd(t, 10*time.Second, "logs", "--tail", "60", container)
	return "logs of " + container + ":\n" + out
}

// xmppLogin logs in with go-sendxmpp, a real XMPP client (STARTTLS, SASL, bind), and sends
// itself a message; it returns the client's error, nil when the login succeeded. The server's
// certificate is self-signed, hence -n.
func xmppLogin(t *testing.T, c2sPort int, jid, password string) error {
	t.Helper()
	bin := requireTool(t, "go-sendxmpp", "go-sendxmpp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-n", "--timeout", "10", "-u", jid, "-p", password,
		"-j", net.JoinHostPort("127.0.0.1", strconv.Itoa(c2sPort)), jid)
	cmd.Stdin = strings.NewReader("prosody-pfe image test\n")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no sendxmpprc of the machine
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &loginError{err: err, out: strings.TrimSpace(string(out))}
	}
	return nil
}

type loginError struct {
	err error
	out string
}

func (e *loginError) Error() string { return "go-sendxmpp: " + e.err.Error() + ": " + e.out }
