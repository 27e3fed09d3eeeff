package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
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
		s.WaitFor(30*time.Second, "a new prosody, ready", func() bool {
			code, _, err := s.Get("/readyz")
			return err == nil && code == 200 && s.ProsodyPID() != pid
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
		if !strings.Contains(s.Stderr(), "rendered config was changed outside the entrypoint") {
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
