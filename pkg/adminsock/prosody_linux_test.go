package adminsock_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
)

// server is a real Prosody 13 started for one test, as the prosody user, with its admin socket
// in a temp dir.
type server struct {
	dir  string
	cfg  string
	sock string
	c2s  int
	proc *prosodytest.Process
}

// baseConfig is the smallest Prosody config that gives an admin socket: everything on
// 127.0.0.1, no s2s/http listeners, data and socket under dir.
func (s *server) baseConfig(extraGlobal, hosts string) string {
	return fmt.Sprintf(`-- test config written by adminsock tests
data_path = %q
admin_socket = %q
log = { { levels = { min = "info" }, to = "console" } }
modules_enabled = { "admin_shell" }
c2s_ports = { %d }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = {}
s2s_ports = {}
s2s_direct_tls_ports = {}
http_ports = {}
https_ports = {}
%s
VirtualHost "localhost"
%s`, filepath.Join(s.dir, "data"), s.sock, s.c2s, extraGlobal, hosts)
}

func (s *server) writeConfig(t *testing.T, text string) {
	t.Helper()
	// Written whole and renamed, as the renderer does, so Prosody never reads half a file.
	tmp := s.cfg + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatalf("write config: %v", err)
	}
	if err := os.Rename(tmp, s.cfg); err != nil {
		t.Fatalf("rename config: %v", err)
	}
}

// startProsody runs `prosody -F --config X` as the prosody user and waits until its admin
// socket answers. It is stopped with SIGTERM when the test ends.
func startProsody(t *testing.T) *server {
	t.Helper()
	dir := prosodytest.Dir(t, "data")
	s := &server{dir: dir, cfg: filepath.Join(dir, "prosody.cfg.lua"), sock: filepath.Join(dir, "a.sock"),
		c2s: prosodytest.FreePort(t)}
	if len(s.sock) >= 108 {
		t.Fatalf("admin socket path %s is too long for a unix socket; set TMPDIR to a shorter path", s.sock)
	}
	s.proc = prosodytest.Start(t, prosodytest.Options{Dir: dir, Config: s.baseConfig("", ""), StrictStop: true})

	wait.Until(t, 15*time.Second, "admin socket "+s.sock, func() error {
		if err := s.proc.Running(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := adminsock.Dial(ctx, s.sock)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
	return s
}

func dial(t *testing.T, s *server) *adminsock.Conn {
	t.Helper()
	c, err := adminsock.Dial(testCtx(t), s.sock)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestServerVersionAndConfigReload(t *testing.T) {
	s := startProsody(t)
	c := dial(t, s)
	ctx := testCtx(t)

	v, err := c.ServerVersion(ctx)
	if err != nil {
		t.Fatalf("ServerVersion: %v", err)
	}
	if !strings.HasPrefix(v, "13.") {
		t.Errorf("ServerVersion = %q, want 13.x", v)
	}

	res, err := c.ConfigReload(ctx)
	if err != nil {
		t.Fatalf("ConfigReload: %v", err)
	}
	if !res.OK || !strings.Contains(res.Message, "Config reloaded") {
		t.Errorf("ConfigReload = %+v, want OK with \"Config reloaded\"", res)
	}
	// Prosody logs this from reload_config; its absence means the command did not run.
	// The log comes through a pipe and may arrive after the command's answer.
	wait.Until(t, 10*time.Second, "prosody to log the reload", func() error {
		if out := s.proc.Output(); !strings.Contains(out, "Reloading configuration file") {
			return fmt.Errorf("no reload in its output:\n%s", out)
		}
		return nil
	})
}

func TestConfigReloadSyntaxErrorIsRefusedThenFixed(t *testing.T) {
	s := startProsody(t)
	c := dial(t, s)
	ctx := testCtx(t)

	good := s.baseConfig("", "")
	bad := good + "\nthis is not lua\n"
	badLine := strings.Count(good, "\n") + 2
	s.writeConfig(t, bad)

	res, err := c.ConfigReload(ctx)
	if err != nil {
		t.Fatalf("ConfigReload of a broken file broke the connection: %v", err)
	}
	if res.OK {
		t.Fatalf("ConfigReload of a broken file = OK: %+v", res)
	}
	// Lua shortens chunk names to their last ~60 bytes ("...tail/prosody.cfg.lua"), so a long
	// path is cut at the front; its file name and the line always survive.
	want := fmt.Sprintf("%s:%d: syntax error", filepath.Base(s.cfg), badLine)
	if !strings.Contains(res.Message, want) {
		t.Errorf("error message %q does not name the file and line %q", res.Message, want)
	}

	// The server keeps running on its old config, and the next good file applies.
	s.writeConfig(t, good)
	res, err = c.ConfigReload(ctx)
	if err != nil || !res.OK {
		t.Fatalf("ConfigReload after the fix = %+v, %v; want OK", res, err)
	}
}

func TestModuleLoadListUnload(t *testing.T) {
	s := startProsody(t)
	c := dial(t, s)
	ctx := testCtx(t)

	has := func(name string) bool {
		t.Helper()
		mods, err := c.ModuleList(ctx, "localhost")
		if err != nil {
			t.Fatalf("ModuleList: %v", err)
		}
		for _, m := range mods {
			if m == name {
				return true
			}
		}
		return false
	}
	if !has("admin_shell") {
		t.Fatalf("ModuleList does not show admin_shell, which the config enables")
	}
	if has("uptime") {
		t.Fatalf("uptime loaded before module:load")
	}

	res, err := c.ModuleLoad(ctx, "uptime", "localhost")
	if err != nil || !res.OK {
		t.Fatalf("ModuleLoad(uptime) = %+v, %v", res, err)
	}
	if !has("uptime") {
		t.Errorf("uptime not listed after ModuleLoad")
	}

	res, err = c.ModuleUnload(ctx, "uptime", "localhost")
	if err != nil || !res.OK {
		t.Fatalf("ModuleUnload(uptime) = %+v, %v", res, err)
	}
	if has("uptime") {
		t.Errorf("uptime still listed after ModuleUnload")
	}

	res, err = c.ModuleLoad(ctx, "no_such_module_xyz", "localhost")
	if err != nil {
		t.Fatalf("ModuleLoad of a missing module broke the connection: %v", err)
	}
	if res.OK {
		t.Errorf("ModuleLoad of a missing module = OK: %+v", res)
	}

	global, err := c.ModuleList(ctx, "*")
	if err != nil || len(global) == 0 {
		t.Errorf("ModuleList(\"*\") = %v, %v; want the global modules", global, err)
	}
}

// TestLoadedModulesOfOneCommand: the one-command form answers exactly what
// LoadedModules answers host by host, for an active host and one Prosody
// does not know, and the global modules are in both.
func TestLoadedModulesOfOneCommand(t *testing.T) {
	s := startProsody(t)
	c := dial(t, s)
	ctx := testCtx(t)
	hosts := []string{"localhost", "nowhere.localhost"}
	got, err := c.LoadedModulesOf(ctx, hosts)
	if err != nil {
		t.Fatalf("LoadedModulesOf(%q): %v", hosts, err)
	}
	for _, h := range hosts {
		want, err := c.LoadedModules(ctx, h)
		if err != nil {
			t.Fatalf("LoadedModules(%s): %v", h, err)
		}
		if !maps.Equal(got[h], want) {
			t.Errorf("LoadedModulesOf[%s] = %v, want what LoadedModules says: %v", h, slices.Sorted(maps.Keys(got[h])), slices.Sorted(maps.Keys(want)))
		}
	}
	if !got["localhost"]["admin_shell"] {
		t.Errorf("localhost's modules %v lack admin_shell, which the config enables", slices.Sorted(maps.Keys(got["localhost"])))
	}
	if len(got["nowhere.localhost"]) == 0 {
		t.Errorf("a host Prosody does not know has no modules at all; want the global ones")
	}
}

func TestHostActivateAfterConfigReload(t *testing.T) {
	s := startProsody(t)
	c := dial(t, s)
	ctx := testCtx(t)
	const newHost = "new.localhost"

	var cmdErr *adminsock.CommandError
	if _, err := c.ModuleList(ctx, newHost); !errors.As(err, &cmdErr) {
		t.Fatalf("ModuleList of a host not yet active: err = %v, want a *CommandError", err)
	}

	s.writeConfig(t, s.baseConfig("", fmt.Sprintf("VirtualHost %q\n", newHost)))
	if res, err := c.ConfigReload(ctx); err != nil || !res.OK {
		t.Fatalf("ConfigReload = %+v, %v", res, err)
	}
	res, err := c.HostActivate(ctx, newHost)
	if err != nil || !res.OK {
		t.Fatalf("HostActivate = %+v, %v", res, err)
	}
	mods, err := c.ModuleList(ctx, newHost)
	if err != nil || len(mods) == 0 {
		t.Fatalf("ModuleList(%s) after activation = %v, %v; want its modules", newHost, mods, err)
	}

	res, err = c.HostDeactivate(ctx, newHost)
	if err != nil || !res.OK {
		t.Fatalf("HostDeactivate = %+v, %v", res, err)
	}
	if _, err := c.ModuleList(ctx, newHost); !errors.As(err, &cmdErr) {
		t.Errorf("ModuleList after deactivation: err = %v, want a *CommandError", err)
	}
}

func TestExecErrorsAndEscaping(t *testing.T) {
	s := startProsody(t)
	c := dial(t, s)
	ctx := testCtx(t)

	// A Lua error is a failed command, not a broken connection.
	res, err := c.Exec(ctx, "nosuch:thing()")
	if err != nil {
		t.Fatalf("Exec of an unknown command: %v", err)
	}
	if res.OK {
		t.Errorf("Exec of an unknown command = OK: %+v", res)
	}

	// XML metacharacters reach Lua intact: the shell evaluates the expression and prints it.
	res, err = c.Exec(ctx, `>"<a & 'b'>" .. "]]>"`)
	if err != nil {
		t.Fatalf("Exec with XML metacharacters: %v", err)
	}
	if !res.OK || !strings.Contains(res.Message, `<a & 'b'>]]>`) {
		t.Errorf("Exec with XML metacharacters = %+v, want the string echoed back", res)
	}

	// A hostile module name stays one Lua string: no code runs, the load just fails.
	res, err = c.ModuleLoad(ctx, `x") os.exit(1) --`, "")
	if err != nil {
		t.Fatalf("ModuleLoad with a hostile name: %v", err)
	}
	if res.OK {
		t.Errorf("ModuleLoad with a hostile name = OK: %+v", res)
	}
	if _, err := c.ServerVersion(ctx); err != nil {
		t.Fatalf("server gone after hostile module name: %v", err)
	}

	// A context that already ended sends nothing and leaves the connection usable.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Exec(done, "server:version()"); !errors.Is(err, context.Canceled) {
		t.Errorf("Exec with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, err := c.ServerVersion(ctx); err != nil {
		t.Errorf("connection unusable after a cancelled Exec: %v", err)
	}
}

func TestDialMissingSocketNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.sock")
	_, err := adminsock.Dial(testCtx(t), path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Dial of a missing socket: err = %v, want an error naming %s", err, path)
	}
}

// A command whose answer never comes (a promise that never settles, so Prosody sends no
// <repl-result>) is cut off by the context deadline; the connection is then broken for good,
// and a new one works.
func TestExecDeadlineBreaksConnection(t *testing.T) {
	s := startProsody(t)
	c := dial(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := c.Exec(ctx, `>require"prosody.util.promise".new(function() end)`)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, adminsock.ErrBroken) {
		t.Fatalf("Exec past its deadline: err = %v, want DeadlineExceeded and ErrBroken", err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("Exec returned %s after a 300ms deadline", took)
	}
	if _, err := c.ServerVersion(testCtx(t)); !errors.Is(err, adminsock.ErrBroken) {
		t.Errorf("Exec on a broken connection: err = %v, want ErrBroken", err)
	}
	if _, err := dial(t, s).ServerVersion(testCtx(t)); err != nil {
		t.Errorf("new connection after a timed-out one: %v", err)
	}
}
