package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
)

// The hostile local user: someone who runs code as the prosody user (a
// vulnerable module, a shell in the container as uid prosody) turning that
// into more than Prosody's own rights, or into a lasting change the
// entrypoint does not see.

// tamper is what the tests append to the rendered config: back to the global
// section (Host "*"), then a real option Prosody's admin shell reports.
const tamper = "\nHost \"*\"\nmotd_text = \"tampered\"\n"

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// TestRenderedConfigTamper: the prosody user can neither change the rendered
// config nor put another file in its place; and a change made anyway (here
// by root, standing for what permissions cannot stop: an older runtime
// directory, a volume whose owner cannot be changed) does not survive a
// kill -9 of Prosody, nor does a SIGHUP call it "unchanged".
func TestRenderedConfigTamper(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Env: map[string]string{"PROSODY_RESTART_BACKOFF": "100ms"}}).Start()
	s.WaitReady(30 * time.Second)
	runtimeDir := filepath.Join(s.Dir, "runtime")
	cfg := filepath.Join(runtimeDir, "prosody.cfg.lua")
	good := s.RenderedConfig()
	sum := sha256.Sum256([]byte(good))
	goodHash := hex.EncodeToString(sum[:])
	if got := s.Status().ConfigHash; got != goodHash {
		t.Fatalf("/status config_hash %s, file's sha256 %s", got, goodHash)
	}

	uid, gid := prosodytest.IDs(t)
	for _, attempt := range [][]string{
		{"sh", "-c", "printf '%s' '" + tamper + "' >> " + cfg},
		{"mv", cfg, cfg + ".old"},
		{"sh", "-c", "cp " + cfg + " " + cfg + ".new"},
		{"ln", "-s", "/etc/passwd", filepath.Join(runtimeDir, "planted")},
	} {
		if out, err := prosodytest.As(t, uid, gid, nil, attempt...); err == nil {
			t.Errorf("as prosody, %q succeeded (%s); want permission denied", attempt, out)
		}
	}
	if s.RenderedConfig() != good {
		t.Fatal("the prosody user changed the rendered config")
	}

	t.Run("kill -9 restarts prosody on the rendered bytes", func(t *testing.T) {
		appendFile(t, cfg, tamper)
		pid := s.ProsodyPID()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Ready, and for the new child: the pid is read on both sides of the probe, since
		// right after the kill /readyz can still say 200 for the old one while /status has
		// no child (pid 0) yet.
		s.WaitFor(30*time.Second, "a new prosody, ready", func() bool {
			before := s.ProsodyPID()
			code, _, err := s.Get("/readyz")
			return err == nil && code == 200 && before > 0 && before != pid && s.ProsodyPID() == before
		})
		if s.RenderedConfig() != good {
			t.Fatal("prosody was restarted with the tampered file left in place")
		}
		if got := s.Status().ConfigHash; got != goodHash {
			t.Errorf("/status config_hash %s after the restart, want the file's %s", got, goodHash)
		}
		if got := configGet(t, s, "*", "motd_text"); strings.Contains(got, "tampered") {
			t.Errorf("the restarted prosody runs the tampered option: motd_text %s", got)
		}
		if !s.Logged("rendered config was changed outside the entrypoint") {
			t.Error("no warning about the changed file in the entrypoint's log")
		}
	})

	t.Run("SIGHUP with a tampered file is not unchanged", func(t *testing.T) {
		appendFile(t, cfg, tamper)
		before := reloads(t, s, "")
		if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitOutcome(t, s, before, "applied")
		if s.RenderedConfig() != good {
			t.Fatal("the reload left the tampered file in place")
		}
		s.WaitReady(20 * time.Second)
		if got := configGet(t, s, "*", "motd_text"); strings.Contains(got, "tampered") {
			t.Errorf("after the reload prosody runs the tampered option: motd_text %s", got)
		}
	})
}

// uidMarkerLua is a `$lua` value that leaves a file named after the uid that
// ran it in dir (and evaluates to a string).
func uidMarkerLua(dir string) string {
	return fmt.Sprintf(`(function() local st = Lua.io.open("/proc/self/status"):read("a"); `+
		`local f = Lua.io.open(%q .. "/uid-" .. st:match("Uid:%%s+(%%d+)"), "w"); f:close(); return "lua ran" end)()`, dir)
}

// uidMarkers lists the uid-N files in dir.
func uidMarkers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestTreeLuaNeverRunsAsRoot: a `$lua` value in the custom directory runs
// with Prosody's rights wherever the entrypoint evaluates the config: the
// check stage at start, `entrypoint profiles validate`, `entrypoint
// prosodyctl`. Before, each of them ran prosodyctl as root (--root, or
// loading the config before dropping to prosody), so the tree's Lua ran as
// uid 0.
func TestTreeLuaNeverRunsAsRoot(t *testing.T) {
	t.Parallel()
	const profile = "e2e-lua"
	s := NewServer(t, Options{Profile: profile})
	markers := filepath.Join(s.Dir, "markers")
	if err := os.Mkdir(markers, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(markers, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	p, err := json.MarshalIndent(map[string]any{
		"name":        profile,
		"description": "development, with a $lua value that tells which uid evaluated the config",
		"features":    developmentFeatures(t),
		"global":      map[string]any{"settings": map[string]any{"motd_text": map[string]string{"$lua": uidMarkerLua(markers)}}},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, filepath.Join(s.Dir, "custom", "profiles", profile, "profile.json"), p)
	s.Start()
	s.WaitReady(30 * time.Second)
	uid, _ := prosodytest.IDs(t)
	prosodyMarker := fmt.Sprintf("uid-%d", uid)
	if got := uidMarkers(t, markers); !contains(got, prosodyMarker) || contains(got, "uid-0") {
		t.Fatalf("after start the config's Lua ran as %v; want %s only", got, prosodyMarker)
	}

	t.Run("profiles validate", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, entrypointBin, "profiles", "validate", profile)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range s.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ok   "+profile) {
			t.Fatalf("profiles validate %s: %v\n%s", profile, err, out)
		}
		if got := uidMarkers(t, markers); contains(got, "uid-0") {
			t.Fatalf("validate ran the config's Lua as root: %v", got)
		}
	})

	t.Run("prosodyctl", func(t *testing.T) {
		ctl := NewServer(t, Options{Profile: profile, Dir: s.Dir, Args: []string{"prosodyctl", "check", "config"}}).Start()
		if code, ok := ctl.Wait(60 * time.Second); !ok || code != 0 {
			t.Fatalf("prosodyctl check config: exit %d (exited %v)\n%s%s", code, ok, ctl.Stdout(), ctl.Stderr())
		}
		if got := uidMarkers(t, markers); contains(got, "uid-0") {
			t.Fatalf("entrypoint prosodyctl ran the config's Lua as root: %v", got)
		}
	})
}

// TestProductionRefusesWritableCustomDir: in production a custom directory
// anyone can write stops start-up (78) with a message naming the variable,
// the path and the fix, before Prosody or any check runs; fixed, the same
// server starts.
func TestProductionRefusesWritableCustomDir(t *testing.T) {
	t.Parallel()
	ca := newRenewalCA(t)
	s := productionServer(t, nil)
	chain, key := ca.leaf(t, 201, "localhost")
	installLE(t, filepath.Join(s.Dir, "certs"), "localhost", 1, chain, key)
	custom := filepath.Join(s.Dir, "custom")
	if err := os.Chmod(custom, 0o777); err != nil {
		t.Fatal(err)
	}
	s.Start()
	code, ok := s.Wait(20 * time.Second)
	if !ok || code != 78 {
		t.Fatalf("exit = %d (exited %v), want 78", code, ok)
	}
	errs := s.Stderr()
	for _, want := range []string{"PROSODY_CUSTOM_DIR", fmt.Sprintf("%q is writable by others", custom), "chmod -R go-w " + custom} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errs)
		}
	}
	if s.Stdout() != "" {
		t.Fatalf("prosody ran:\n%s", s.Stdout())
	}

	if err := os.Chmod(custom, 0o755); err != nil {
		t.Fatal(err)
	}
	fixed := NewServer(t, Options{Profile: "minimal", Environment: "production", Dir: s.Dir}).Start()
	fixed.WaitReady(30 * time.Second)
}
