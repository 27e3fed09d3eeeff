//go:build docker

package deploy

import (
	"debug/elf"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// arm64ImageEnv names the arm64 image under test: scripts/test-docker builds it under qemu-user
// emulation from a local Debian arm64 base (docker/scripts/debian-base.sh).
const arm64ImageEnv = "PROSODY_PFE_TEST_IMAGE_ARM64"

// The arm64 image, run on this amd64 machine through qemu-user (binfmt_misc), is an arm64
// system with the arm64 entrypoint as PID 1, becomes healthy by its own HEALTHCHECK, answers
// /readyz, lets a real XMPP client log in and stops with exit 0: what an operator on an arm64
// host (a Raspberry Pi, Graviton) gets from the same Dockerfile.
func TestImageArm64Healthy(t *testing.T) {
	img := os.Getenv(arm64ImageEnv)
	if img == "" {
		t.Fatalf("%s is not set: run `make test-docker` (scripts/test-docker builds the arm64 image under qemu-user emulation; TEST_DOCKER_ARM64=0 leaves this test out)", arm64ImageEnv)
	}
	requireTool(t, "docker", "docker.io")
	if got := mustDocker(t, 30*time.Second, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", img); got != "linux/arm64" {
		t.Fatalf("image %s is %s, want linux/arm64", img, got)
	}

	// The entrypoint in the image is an arm64 ELF binary (not the host's, which qemu would not
	// be needed for): copied out of a created, never started, container.
	holder := uniqueName("pfe-test-arm64-cp-")
	mustDocker(t, 60*time.Second, "create", "--name", holder, img)
	t.Cleanup(func() { _, _ = dockerCmd(t, 30*time.Second, "rm", "--force", "--volumes", holder) })
	bin := filepath.Join(t.TempDir(), "entrypoint")
	mustDocker(t, 60*time.Second, "cp", holder+":/usr/local/bin/entrypoint", bin)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the image's /usr/local/bin/entrypoint is not an ELF file: %v", err)
	}
	machine := f.Machine
	_ = f.Close()
	if machine != elf.EM_AARCH64 {
		t.Fatalf("the image's /usr/local/bin/entrypoint is built for %s, want %s", machine, elf.EM_AARCH64)
	}

	volume := uniqueName("pfe-test-arm64-data-")
	mustDocker(t, 30*time.Second, "volume", "create", volume)
	t.Cleanup(func() { _, _ = dockerCmd(t, 30*time.Second, "volume", "rm", "-f", volume) })
	const jid, password = "admin@localhost", "arm64-Pw-5"
	start := time.Now()
	// Under emulation Prosody's start (Lua, TLS key generation) is several times slower than
	// native; the deadline leaves room for a loaded 2-CPU machine.
	c := startImage(t, img, imageRun{name: "arm64", healthy: 4 * time.Minute}, volume, jid, password)
	t.Logf("arm64 image healthy %s after docker run", time.Since(start).Round(time.Second))

	if got := mustDocker(t, 60*time.Second, "exec", c.name, "uname", "-m"); got != "aarch64" {
		t.Errorf("uname -m in the arm64 container = %q, want aarch64", got)
	}
	readyz := "http://127.0.0.1:" + strconv.Itoa(c.ports.Health) + "/readyz"
	if err := httpStatus(readyz, http.StatusOK); err != nil {
		t.Errorf("GET %s: %v", readyz, err)
	}
	if err := xmppLogin(t, c.ports.C2S, jid, password); err != nil {
		t.Errorf("login as %s on the arm64 container: %v\n%s", jid, err, containerLogs(t, c.name))
	}
	stopAndCheck(t, c.name)
}

// httpStatus GETs url and returns an error unless the response status is want.
func httpStatus(url string, want int) error {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	return nil
}
