// Package prosodytest starts a real Prosody 13 for package tests. It is for tests
// only: its functions take a testing.TB and end the test (t.Fatal) when the machine
// lacks what they need, naming the Debian package to install.
//
// Every server it starts listens where its config says; tests keep to 127.0.0.1 and
// take ports from FreePort, since other tests run at the same time.
package prosodytest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
)

// FreePort returns a TCP port free on 127.0.0.1, below the ephemeral range and
// never the same twice in one process (see entrypointtest.FreePorts).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := entrypointtest.FreePorts(1)
	if err != nil {
		t.Fatalf("pick a free port on 127.0.0.1: %v", err)
	}
	return p[0]
}

// IDs returns the uid and gid of the prosody user. It fails the test, naming the
// Debian package prosody, when the user does not exist.
func IDs(t testing.TB) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("prosody")
	if err != nil {
		t.Fatalf("look up the prosody user (install the Debian package prosody, 13.x from bookworm-backports): %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("prosody user has a non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return uid, gid
}

// Dir returns a new t.TempDir owned by the prosody user, mode 0755, with its parent
// (private to the test's user by default) made 0755 so the prosody user can enter
// it. Each of subdirs is created inside it, owned by prosody, mode 0755. The tree
// is removed when the test ends, after any Process started later has stopped.
func Dir(t testing.TB, subdirs ...string) string {
	t.Helper()
	uid, gid := IDs(t)
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatalf("make %s searchable for prosody: %v", filepath.Dir(dir), err)
	}
	for _, d := range append([]string{""}, subdirs...) {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
		// MkdirAll leaves an existing directory's mode alone, and the umask trims new ones.
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatalf("chmod %s: %v", p, err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatalf("chown %s to prosody (%d:%d; tests that run Prosody need root): %v", p, uid, gid, err)
		}
	}
	return dir
}

// MinimalConfig is the smallest Prosody config for a client port: c2s on
// 127.0.0.1:c2sPort without TLS (s2s and tls disabled), data under dataDir,
// certificates in "certs" next to the config, info logs to the console, and one
// VirtualHost "example.test".
func MinimalConfig(dataDir string, c2sPort int) string {
	return fmt.Sprintf(`data_path = %q
certificates = "certs"
c2s_ports = { %d }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
modules_enabled = { "saslauth", "ping" }
modules_disabled = { "s2s", "tls" }
c2s_require_encryption = false
log = { { levels = { min = "info" }, to = "console" } }
VirtualHost "example.test"
`, dataDir, c2sPort)
}

// Buffer is entrypointtest.Buffer: a child's output the test reads while the
// child still writes.
type Buffer = entrypointtest.Buffer

// AsProsody runs a command as the prosody user, with no supplementary group
// (setpriv, util-linux), and fails the test with its output if it fails:
// how the hardening tests play the prosody user attacking root's paths.
func AsProsody(t testing.TB, args ...string) {
	t.Helper()
	uid, gid := IDs(t)
	if out, err := As(t, uid, gid, nil, args...); err != nil {
		t.Fatalf("as prosody: %v: %v\n%s", args, err, out)
	}
}

// As runs a command as uid:gid with no supplementary group (setpriv,
// util-linux) and env added to the test's environment, for at most 30s, and
// returns its combined output and its error: for an attempt the test expects
// to fail (another user sending to a socket it must not reach).
func As(t testing.TB, uid, gid int, env []string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", append([]string{"--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(gid), "--clear-groups", "--"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}
