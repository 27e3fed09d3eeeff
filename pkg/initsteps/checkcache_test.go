package initsteps_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/checkcache"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/reload"
)

// countingProsodyctl puts first in PATH a prosodyctl that counts its runs in a
// file and runs the real one: what the check stage runs is observed, not
// assumed. When the file fail exists it exits 1 instead: the one fault
// injected here, so that the same bytes fail once (the real prosodyctl passes
// them). It returns the wrapper's path and a function that reads the count.
func countingProsodyctl(t *testing.T) (wrapper, fail string, count func() int) {
	t.Helper()
	dir := prosodytest.Dir(t) // searchable and writable by prosody, who runs it
	counter := filepath.Join(dir, "runs")
	fail = filepath.Join(dir, "fail")
	wrapper = filepath.Join(dir, "prosodyctl")
	script := "#!/bin/sh\necho run >> " + counter + "\n[ -e " + fail + " ] && { echo 'injected failure'; exit 1; }\nexec /usr/bin/prosodyctl \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return wrapper, fail, func() int {
		data, err := os.ReadFile(counter)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Count(string(data), "run\n")
	}
}

// start runs a start-up's config stages on a fresh State, as an entrypoint
// restart does, and returns it.
func start(t *testing.T, env []string) *initsteps.State {
	t.Helper()
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := runConfig(t, s); err != nil {
		t.Fatalf("config stages: %v", err)
	}
	return s
}

// checkAgain runs the check stage alone on s, as a restart on the same
// rendered file would.
func checkAgain(t *testing.T, s *initsteps.State) error {
	t.Helper()
	_, err := run(t, s, []initsteps.Stage[*initsteps.State]{initsteps.Check})
	return err
}

// A restart on a config that passed skips prosodyctl check config; a one-byte
// change, a different prosodyctl, a planted verdict file or an earlier failure
// all check again.
func TestCheckSkippedOnlyForTheSamePassedConfig(t *testing.T) {
	root, env := server(t, nil)
	wrapper, fail, count := countingProsodyctl(t)
	verdicts := filepath.Join(root, "data", checkcache.FileName)

	s := start(t, env)
	if count() != 1 || s.CheckCached {
		t.Fatalf("first start: prosodyctl ran %d times (cached %v), want once", count(), s.CheckCached)
	}
	if fi, err := os.Stat(verdicts); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("verdict file in the data directory: %v %v", fi, err)
	}

	s = start(t, env)
	if count() != 1 || !s.CheckCached {
		t.Fatalf("restart on the same config: prosodyctl ran %d times in all (cached %v), want still once", count(), s.CheckCached)
	}
	if got := reload.Info(s).ConfigCheck; got != "cached" { // what /status shows
		t.Errorf("/status config_check %q, want cached", got)
	}

	t.Run("one byte changed", func(t *testing.T) {
		before := count()
		changed := bytes.Replace(s.Rendered, []byte("-- profile:"), []byte("-- profile "), 1)
		if bytes.Equal(changed, s.Rendered) {
			t.Fatal("the rendered file has no profile comment to change")
		}
		if _, err := s.WriteConfig(s.Paths.Config, changed); err != nil {
			t.Fatal(err)
		}
		s.Rendered = changed
		if err := checkAgain(t, s); err != nil {
			t.Fatal(err)
		}
		if count() != before+1 || s.CheckCached {
			t.Fatalf("a one-byte change: prosodyctl ran %d times (cached %v), want once more", count()-before, s.CheckCached)
		}
		if got := reload.Info(s).ConfigCheck; got != "checked" {
			t.Errorf("/status config_check %q, want checked", got)
		}
		s = start(t, env) // back to the rendered bytes: their pass is still recorded
		if count() != before+1 || !s.CheckCached {
			t.Fatalf("back to the checked bytes: prosodyctl ran %d more times (cached %v), want none", count()-before-1, s.CheckCached)
		}
	})

	t.Run("another prosodyctl", func(t *testing.T) {
		before := count()
		// A new program in its place (an upgrade, a new image): same bytes,
		// new inode and change time.
		script, err := os.ReadFile(wrapper)
		if err != nil {
			t.Fatal(err)
		}
		next := wrapper + ".new"
		if err := os.WriteFile(next, append(script, "# v2\n"...), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, wrapper); err != nil {
			t.Fatal(err)
		}
		s = start(t, env)
		if count() != before+1 || s.CheckCached {
			t.Fatalf("new prosodyctl: ran %d times (cached %v), want once", count()-before, s.CheckCached)
		}
	})

	t.Run("verdict file planted by prosody", func(t *testing.T) {
		before := count()
		// prosody owns the data directory: it replaces the file with its own
		// copy of a valid one.
		data, err := os.ReadFile(verdicts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(verdicts); err != nil {
			t.Fatal(err)
		}
		readable := filepath.Join(prosodytest.Dir(t), "copy")
		if err := os.WriteFile(readable, data, 0o644); err != nil {
			t.Fatal(err)
		}
		prosodytest.AsProsody(t, "cp", readable, verdicts)
		s = start(t, env)
		if count() != before+1 || s.CheckCached {
			t.Fatalf("planted verdicts: prosodyctl ran %d times (cached %v), want once", count()-before, s.CheckCached)
		}
	})

	t.Run("a failed check is not recorded", func(t *testing.T) {
		if err := os.Remove(verdicts); err != nil {
			t.Fatal(err)
		}
		before := count()
		if err := os.WriteFile(fail, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := checkAgain(t, s); err == nil || !initsteps.IsConfig(err) {
			t.Fatalf("injected failure: %v, want a configuration error", err)
		}
		if err := os.Remove(fail); err != nil {
			t.Fatal(err)
		}
		if err := checkAgain(t, s); err != nil {
			t.Fatal(err)
		}
		if count() != before+2 || s.CheckCached {
			t.Fatalf("after a failure: prosodyctl ran %d times (cached %v), want twice", count()-before, s.CheckCached)
		}
	})
}

// A reload's candidate of a changed file is always checked, even while the
// live file's pass is recorded.
func TestCandidateOfAChangeIsChecked(t *testing.T) {
	_, env := server(t, nil)
	_, _, count := countingProsodyctl(t)
	s := start(t, env)
	next := s.Candidate(s.Settings)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := initsteps.Run(ctx, initsteps.ConfigStages(s.Settings), next, nil, nil); err != nil {
		t.Fatal(err)
	}
	before := count()
	changed := append(append([]byte{}, next.Rendered...), "\n-- an edit\n"...)
	if _, err := next.WriteConfig(next.Paths.Config, changed); err != nil {
		t.Fatal(err)
	}
	next.Rendered = changed
	if err := checkAgain(t, next); err != nil {
		t.Fatal(err)
	}
	if count() != before+1 || next.CheckCached {
		t.Fatalf("changed candidate: prosodyctl ran %d times (cached %v), want once", count()-before, next.CheckCached)
	}
}
