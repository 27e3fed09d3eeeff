package initsteps_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
)

// The directories stage gives the data and runtime directories to the user
// prosody runs as, with the modes the pipeline relies on.
func TestDirectoriesAreMadeForProsody(t *testing.T) {
	root, env := server(t, nil)
	data := filepath.Join(root, "data")
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := run(t, s, initsteps.Preamble()); err != nil {
		t.Fatal(err)
	}
	if s.Cred == nil {
		t.Fatal("no credential: the test runs as root and expects to drop to prosody")
	}
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatalf("data directory not made: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o750 || int(st.Uid) != s.UID || int(st.Gid) != s.GID {
		t.Errorf("data directory %v owned by %d:%d; want 0750 owned by prosody (%d:%d)", fi.Mode(), st.Uid, st.Gid, s.UID, s.GID)
	}
}

// Init hooks run after the config stages in lexical order, each its own
// stage; a failing hook stops start-up with a configuration error, and the
// hooks after it do not run.
func TestHooksRunInOrderAndAFailureIsAConfigError(t *testing.T) {
	root, env := server(t, nil)
	hooks := filepath.Join(root, "hooks")
	trace := filepath.Join(root, "trace")
	for name, body := range map[string]string{
		"10-first.sh":  "echo first >> " + trace + "\n",
		"20-second.sh": "echo second >> " + trace + "\nexit 3\n",
		"30-third.sh":  "echo third >> " + trace + "\n",
	} {
		if err := os.WriteFile(filepath.Join(hooks, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := run(t, s, initsteps.Preamble()); err != nil {
		t.Fatal(err)
	}
	stages := initsteps.Startup(s)
	if got := names(stages)[len(stages)-4:]; !slices.Equal(got, []string{"hook/10-first.sh", "hook/20-second.sh", "hook/30-third.sh", "listeners"}) {
		t.Fatalf("last stages %v, want the three hooks in order, then listeners", got)
	}
	res, err := run(t, s, stages)
	var se *initsteps.StageError
	if !errors.As(err, &se) || se.Stage != "hook/20-second.sh" || !initsteps.IsConfig(err) {
		t.Fatalf("startup: %v; want a configuration error of stage hook/20-second.sh", err)
	}
	if len(res) != len(stages)-2 {
		t.Errorf("%d stages ran, want all but the last hook and listeners", len(res))
	}
	got, _ := os.ReadFile(trace)
	if string(got) != "first\nsecond\n" {
		t.Errorf("hooks wrote %q, want first then second only", got)
	}
}

// Validate checks one profile in every environment of the shipped tree with
// the real checkers, and names a profile that does not exist.
func TestValidateOneProfileInEveryEnvironment(t *testing.T) {
	_, env := server(t, nil)
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := run(t, s, initsteps.Preamble(), []initsteps.Stage[*initsteps.State]{initsteps.Plan}); err != nil {
		t.Fatal(err)
	}
	tree, in := s.Tree, initsteps.PlanInputs(s.Settings)
	results, err := initsteps.Validate(context.Background(), tree, in, "minimal", env, s.Cred)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(tree.Environments()) {
		t.Fatalf("%d results, want one per environment (%v)", len(results), tree.Environments())
	}
	for _, r := range results {
		if !r.OK || r.Profile != "minimal" {
			t.Errorf("minimal × %s: %+v", r.Environment, r)
		}
	}
	if _, err := initsteps.Validate(context.Background(), tree, in, "nosuch", env, s.Cred); err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("Validate(nosuch) = %v, want an error naming it", err)
	}
}
