package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `entrypoint verify` beside a server that runs the operator's own
// prosody.cfg.lua (PROSODY_CONFIG_FILE) checks what that config loads, not
// the features of a PFE plan nobody runs: the login, every module the config
// enables loaded on its host, and one line saying plainly that the
// per-feature checks do not apply. Nothing fails on a server that serves its
// config.
func TestVerifyChecksTheOwnConfig(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	file := filepath.Join(s.Dir, "own", "prosody.cfg.lua")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`-- in the style of the official image's documentation
admins = { }
modules_enabled = { "disco"; "roster"; "saslauth"; "tls"; "ping"; "admin_shell" }
c2s_ports = { %d }
s2s_ports = { %d }
http_ports = { %d }
https_ports = { %d }
interfaces = { "127.0.0.1" }
data_path = %q
authentication = "internal_hashed"
storage = "internal"
log = { info = "*console" }
VirtualHost "localhost"
`, s.C2S, s.S2S, s.HTTP, s.HTTPS, filepath.Join(s.Dir, "data"))
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Env["PROSODY_CONFIG_FILE"] = file
	s.Env["PROSODY_TLS_ALLOW_SELF_SIGNED"] = "true"
	s.Start()
	s.WaitReady(30 * time.Second)

	code, rep, stderr := runVerify(t, s, "")
	results := map[string]string{}
	for _, l := range rep.Lines {
		results[l.Feature] = l.Result
		if strings.Contains(l.Feature, "/") {
			t.Errorf("line %q: a PFE feature checked against a server that runs its own config (%v)", l.Feature, l.Evidence)
		}
	}
	if code != 0 || rep.Failed != 0 {
		t.Errorf("verify exit %d, %d failed; want 0 and none\n%+v\n%s", code, rep.Failed, rep.Lines, stderr)
	}
	for feature, want := range map[string]string{"login": "PASS", "modules": "PASS", "features": "not checkable"} {
		if results[feature] != want {
			t.Errorf("line %q = %q, want %q (lines %+v)", feature, results[feature], want, rep.Lines)
		}
	}
}
