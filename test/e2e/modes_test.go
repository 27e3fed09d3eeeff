package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
)

// `entrypoint prosodyctl check config` (the image's `docker run IMAGE
// prosodyctl check config`) runs the config stages, then the real prosodyctl
// against the file the server would run, and passes its exit code through.
func TestProsodyctlChecksWhatTheServerWouldRun(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Profile: "standard", Args: []string{"prosodyctl", "check", "config"}}).Start()
	code, ok := s.Wait(60 * time.Second)
	if !ok || code != 0 {
		t.Fatalf("prosodyctl check config: exit %d (exited %v), want 0\n%s%s", code, ok, s.Stdout(), s.Stderr())
	}
	if !strings.Contains(s.Stdout(), "All checks passed") {
		t.Fatalf("prosodyctl did not report its checks:\n%s", s.Stdout())
	}
	rendered, err := os.ReadFile(filepath.Join(s.Dir, "runtime", "prosodyctl.cfg.lua"))
	if err != nil || !strings.Contains(string(rendered), "-- profile: standard\n") {
		t.Fatalf("the standard profile's config was not rendered for prosodyctl: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "runtime", "prosody.cfg.lua")); err == nil {
		t.Fatal("prosodyctl mode wrote the running server's config file")
	}

	// A command prosodyctl does not know fails, and the code comes through.
	bad := NewServer(t, Options{Profile: "minimal", Args: []string{"prosodyctl", "check", "no-such-check"}}).Start()
	if code, ok := bad.Wait(60 * time.Second); !ok || code == 0 {
		t.Fatalf("prosodyctl check no-such-check: exit %d (exited %v), want non-zero", code, ok)
	}
}

// Plain init through the binary: the child's exit code comes through, a
// missing program is 127, Prosody's own variables do not block a debug shell
// (a warning only), a bad supervisor variable does (78), and /readyz says
// ready while the child runs.
func TestPlainInitThroughTheBinary(t *testing.T) {
	t.Parallel()
	run := func(env map[string]string, args ...string) *Server {
		return NewServer(t, Options{Env: env, Args: args}).Start()
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		err  string
	}{
		{"child code", nil, []string{"--", "sh", "-c", "exit 3"}, 3, ""},
		{"any command is plain init", nil, []string{"sh", "-c", "kill -TERM $$"}, 143, ""},
		{"missing program", nil, []string{"--", "no-such-program-pfe"}, 127, "no-such-program-pfe"},
		{"bad Prosody variable only warns", map[string]string{"PROSODY_STORAGE": "mysql"}, []string{"--", "true"}, 0, "PROSODY_STORAGE"},
		{"bad supervisor variable stops", map[string]string{"PROSODY_STOP_TIMEOUT": "soon"}, []string{"--", "true"}, 78, "PROSODY_STOP_TIMEOUT"},
	}
	for _, c := range cases {
		s := run(c.env, c.args...)
		code, ok := s.Wait(30 * time.Second)
		if !ok || code != c.code {
			t.Errorf("%s: exit %d (exited %v), want %d\n%s", c.name, code, ok, c.code, s.Stderr())
		}
		if c.err != "" && !strings.Contains(s.Stderr(), c.err) {
			t.Errorf("%s: stderr does not name %q:\n%s", c.name, c.err, s.Stderr())
		}
	}

	s := run(nil, "--", "sleep", "60")
	s.WaitReady(20 * time.Second)
	if st := s.Status(); !st.Child.Running || st.Child.PID == 0 {
		t.Fatalf("plain init /status child = %+v, want the running sleep", st.Child)
	}
	if code := s.Stop(15 * time.Second); code != 143 {
		t.Fatalf("sleep stopped by SIGTERM through plain init: exit %d, want 143", code)
	}
}

// The seeds' legacy and sizing knobs against real Prosody: the legacy
// modules.d lists are loaded (PROSODY_LEGACY_MODE), the migration report names
// the features that replace them (PROSODY_MIGRATION_MODE), and
// PROSODY_RESOURCE_LIMITS renders Prosody's limits module sized by the scale
// profile; the server comes up ready with all three.
func TestLegacyMigrationAndResourceLimits(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Profile: "minimal", Environment: "development", Env: map[string]string{
		"PROSODY_LEGACY_MODE": "true", "PROSODY_MIGRATION_MODE": "true",
		"PROSODY_RESOURCE_LIMITS": "true", "PROSODY_SCALE_PROFILE": "medium",
		"PROSODY_FEATURES_ADMIN_SHELL": "true", // to ask Prosody what it loaded
	}}).Start()
	s.WaitReady(30 * time.Second)
	cfg := s.RenderedConfig()
	for _, want := range []string{`"limits"`, `rate = "50kb/s"`, "modules_enabled:append", `"cloud_notify"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("rendered config lacks %s", want)
		}
	}
	for _, want := range []string{"migration report", "cloud_notify", "mobile/push", "PROSODY_FEATURES=+"} {
		if !strings.Contains(s.Stderr(), want) {
			t.Errorf("the migration report lacks %q", want)
		}
	}
	// Prosody really loaded the legacy lists' modules and the limits module.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := adminsock.Dial(ctx, filepath.Join(s.Dir, "data", "prosody.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	loaded := map[string][]string{}
	for _, host := range []string{"*", "localhost"} {
		if loaded[host], err = conn.ModuleList(ctx, host); err != nil {
			t.Fatalf("module:list(%q): %v", host, err)
		}
	}
	for _, want := range []struct{ host, module string }{{"*", "limits"}, {"localhost", "cloud_notify"}, {"localhost", "csi_simple"}} {
		if !slices.Contains(loaded[want.host], want.module) {
			t.Errorf("module %s not loaded on %s; loaded: %v", want.module, want.host, loaded[want.host])
		}
	}
	if strings.Contains(s.Stdout(), "Unable to load module") || strings.Contains(s.Stdout(), "Error initializing module") {
		t.Fatalf("prosody failed to load a module:\n%s", s.Stdout())
	}
}

// PROSODY_LEGACY_DIR is the operator's own modules.d (the design symlinks the old
// tree): legacy mode loads its lists instead of the shipped ones, the migration report
// reads it, and `entrypoint profiles migrate NAME` writes a profile that gives the same
// modules without legacy mode.
func TestOwnLegacyDirAndMigrationVerb(t *testing.T) {
	t.Parallel()
	legacy := t.TempDir()
	list := "-- our old tree\nmodules_enabled:append {\n\t\"carbons\";\n}\n"
	if err := os.WriteFile(filepath.Join(legacy, "10-ours.cfg.lua"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PROSODY_LEGACY_MODE": "true", "PROSODY_MIGRATION_MODE": "true", "PROSODY_LEGACY_DIR": legacy,
		"PROSODY_FEATURES_ADMIN_SHELL": "true", // to ask Prosody what it loaded
	}
	s := NewServer(t, Options{Profile: "minimal", Environment: "development", Env: env}).Start()
	s.WaitReady(30 * time.Second)
	if cfg := s.RenderedConfig(); !strings.Contains(cfg, `"carbons"`) || strings.Contains(cfg, `"cloud_notify"`) {
		t.Errorf("the rendered config should hold our list (carbons) and not the shipped ones (cloud_notify)")
	}
	for _, want := range []string{"10-ours.cfg.lua:", "carbons", "-> messaging/carbons (not enabled)"} {
		if !strings.Contains(s.Stderr(), want) {
			t.Errorf("the migration report lacks %q", want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := adminsock.Dial(ctx, filepath.Join(s.Dir, "data", "prosody.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if loaded, err := conn.ModuleList(ctx, "localhost"); err != nil || !slices.Contains(loaded, "carbons") {
		t.Errorf("Prosody did not load carbons from our list: %v %v", err, loaded)
	}
	// The migration verb, with the same environment.
	custom := t.TempDir()
	code, out, errOut := designCLI(t, custom, []string{"PROSODY_PROFILE=minimal", "PROSODY_LEGACY_DIR=" + legacy}, "profiles", "migrate", "ours")
	if code != 0 || !strings.Contains(out, "created profile ours") || !strings.Contains(out, "10-ours.cfg.lua:") {
		t.Fatalf("profiles migrate ours: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = designCLI(t, custom, []string{"PROSODY_PROFILE=ours"}, "explain", "carbons")
	if code != 0 || !strings.Contains(out, "IN  module carbons") {
		t.Errorf("the migrated profile does not load carbons without legacy mode: exit %d\n%s%s", code, out, errOut)
	}
}

// A command that starts with a flag is the Prosody pipeline with that flag for
// prosody (the README's command table, as the official image passes flags):
// the real Prosody runs with it after the pipeline's own arguments and
// becomes ready.
func TestFlagCommandGoesToProsody(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Args: []string{"--no-daemonize"}}).Start()
	s.WaitReady(60 * time.Second)
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.ProsodyPID()), "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if args[len(args)-1] != "--no-daemonize" || !slices.Contains(args, "--config") {
		t.Errorf("prosody runs as %q, want the pipeline's --config and the command's --no-daemonize last", args)
	}
}
