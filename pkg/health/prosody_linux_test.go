package health

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
)

// This file starts real Prosody 13 for the tests: `prosody -F` with a minimal
// hand-written config (c2s on a free 127.0.0.1 port, no s2s, no TLS), run as the
// prosody user from /etc/passwd, as the supervisor would.

type prosody struct {
	*prosodytest.Process
	c2s string
}

// startProsody starts Prosody serving VirtualHost "example.test" in dir, with
// NOTIFY_SOCKET=notify when notify is not empty, and c2s on c2sPort. It is stopped
// (SIGTERM, then SIGKILL after 10s) at cleanup.
func startProsody(t *testing.T, dir string, c2sPort int, notify string) *prosody {
	t.Helper()
	var env []string
	if notify != "" {
		env = append(env, "NOTIFY_SOCKET="+notify)
	}
	p := prosodytest.Start(t, prosodytest.Options{
		Dir:    dir,
		Config: prosodytest.MinimalConfig(filepath.Join(dir, "data"), c2sPort),
		Env:    env,
	})
	return &prosody{Process: p, c2s: net.JoinHostPort("127.0.0.1", strconv.Itoa(c2sPort))}
}
