package initsteps_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// server is the environment of a development server under a fresh root, with
// the shipped config tree; extra overrides it.
func server(t testing.TB, extra map[string]string) (root string, env []string) {
	t.Helper()
	// The checks run as prosody: it must reach the rendered file, so the
	// test's directory (private by default) is opened for search.
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(dir, "srv")
	tree, err := filepath.Abs(filepath.Join("..", "..", "config"))
	if err != nil {
		t.Fatal(err)
	}
	vars, _, err := entrypointtest.ServerEnv(root, tree)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		vars[k] = v
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return root, append(env, "PATH="+os.Getenv("PATH"))
}

func run(t *testing.T, s *initsteps.State, stages ...[]initsteps.Stage[*initsteps.State]) ([]initsteps.Result, error) {
	t.Helper()
	return initsteps.Run(context.Background(), slices.Concat(stages...), s, nil, nil)
}

// runConfig runs the preamble, then the config stages the settings choose.
func runConfig(t *testing.T, s *initsteps.State) ([]initsteps.Result, error) {
	t.Helper()
	if _, err := run(t, s, initsteps.Preamble()); err != nil {
		return nil, err
	}
	return run(t, s, initsteps.ConfigStages(s.Settings))
}

func names(stages []initsteps.Stage[*initsteps.State]) []string {
	var out []string
	for _, st := range stages {
		out = append(out, st.Name)
	}
	return out
}

// validate-env reports every problem at once as a configuration error, and
// nothing after it runs.
func TestValidateEnvRefusesBadEnvironment(t *testing.T) {
	_, env := server(t, map[string]string{"PROSODY_C2S_PORT": "fifty", "PROSODY_STORAGE": "mongodb"})
	var stderr bytes.Buffer
	s := initsteps.New(initsteps.Config{Env: env, Stderr: &stderr})
	res, err := run(t, s, initsteps.Preamble())
	var probs *settings.Problems
	if !errors.As(err, &probs) || len(probs.List) != 2 || !initsteps.IsConfig(err) {
		t.Fatalf("err = %v; want a configuration error with 2 problems", err)
	}
	if len(res) != 1 || res[0].Name != "validate-env" || s.Settings != nil {
		t.Fatalf("results %v, settings %v: want only validate-env to have run", res, s.Settings)
	}
}

// The start-up list is the config stages with migrate before render, then one
// stage per hook in lexical order; a reload's candidate runs no migration and
// no hook.
func TestStageOrder(t *testing.T) {
	root, env := server(t, nil)
	for _, h := range []string{"20-second.sh", "10-first.sh"} {
		if err := os.WriteFile(filepath.Join(root, "hooks", h), []byte("#!/bin/sh\ntrue\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := run(t, s, []initsteps.Stage[*initsteps.State]{initsteps.ValidateEnv}); err != nil {
		t.Fatal(err)
	}
	if got, want := names(initsteps.Preamble()), []string{"validate-env", "directories"}; !slices.Equal(got, want) {
		t.Errorf("Preamble = %v, want %v", got, want)
	}
	got := names(initsteps.Startup(s))
	want := []string{"plan", "secrets", "tls", "migrate", "render", "check", "hook/10-first.sh", "hook/20-second.sh", "listeners"}
	if !slices.Equal(got, want) {
		t.Errorf("Startup = %v, want %v", got, want)
	}
	if got, want := names(initsteps.Candidate(s.Settings)), []string{"plan", "secrets", "tls", "render", "check"}; !slices.Equal(got, want) {
		t.Errorf("Candidate = %v, want %v", got, want)
	}
}

// The whole start-up against the real Prosody: the config is rendered, checked
// by prosodyctl, and the certificates and credentials are where the rendered
// file points, private to prosody.
func TestStartupRendersAndChecksWithProsody(t *testing.T) {
	root, env := server(t, nil)
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := run(t, s, initsteps.Preamble()); err != nil {
		t.Fatal(err)
	}
	res, err := run(t, s, initsteps.Startup(s))
	if err != nil {
		t.Fatalf("startup: %v", err)
	}
	if got, want := len(res), len(initsteps.Startup(s)); got != want {
		t.Fatalf("%d stages ran, want %d", got, want)
	}
	live := initsteps.LivePaths(filepath.Join(root, "runtime"), "prosody.cfg.lua")
	if s.Paths != live {
		t.Fatalf("paths %+v, want the live ones %+v", s.Paths, live)
	}
	cfg, err := os.ReadFile(live.Config)
	if err != nil || !bytes.Equal(cfg, s.Rendered) || len(s.Hash) != 64 {
		t.Fatalf("rendered file: %v (hash %q)", err, s.Hash)
	}
	for _, h := range initsteps.Hosts(s.Plan) {
		fi, err := os.Stat(filepath.Join(live.Certs, h+".key"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key of %s: %v %v; want installed with mode 0600", h, err, fi)
		}
	}
	for name := range s.Secrets {
		fi, err := os.Stat(filepath.Join(live.Credentials, name))
		if err != nil || fi.Mode().Perm() != 0o400 {
			t.Errorf("credential %s: %v; want mode 0400", name, err)
		}
	}
}

// A candidate writes only its own paths: the file Prosody runs, its
// certificates and credentials stay as they were.
func TestCandidateTouchesNothingLive(t *testing.T) {
	root, env := server(t, nil)
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := runConfig(t, s); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, filepath.Join(root, "runtime"))
	next := s.Candidate(s.Settings)
	if err := os.MkdirAll(initsteps.CandidateDir(s.Settings.RuntimeDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, next, initsteps.Candidate(next.Settings)); err != nil {
		t.Fatal(err)
	}
	if next.Paths.Config == s.Paths.Config || !bytes.Equal(next.Rendered, s.Rendered) {
		t.Fatalf("candidate wrote %s; want its own file with the same bytes", next.Paths.Config)
	}
	after := snapshot(t, filepath.Join(root, "runtime"))
	for path, data := range before {
		if after[path] != data {
			t.Errorf("%s changed by the candidate", path)
		}
	}
}

// snapshot maps every regular file under dir (outside the candidate's own
// directory and file) to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "next" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && !strings.Contains(path, ".next.") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[path] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A plan that reads the database password refuses to start without it.
func TestSecretsNeedTheDatabasePassword(t *testing.T) {
	_, env := server(t, map[string]string{"PROSODY_STORAGE": "postgres", "PROSODY_DB_HOST": "127.0.0.1"})
	s := initsteps.New(initsteps.Config{Env: env})
	_, err := run(t, s, initsteps.Preamble(), []initsteps.Stage[*initsteps.State]{initsteps.Plan, initsteps.Secrets})
	if !initsteps.IsConfig(err) || !strings.Contains(err.Error(), "PROSODY_DB_PASSWORD") {
		t.Fatalf("err = %v; want a configuration error naming PROSODY_DB_PASSWORD", err)
	}
}

// A module the plan needs but nobody installed stops the check stage, named
// with the feature that wanted it.
func TestCheckNamesMissingModules(t *testing.T) {
	_, env := server(t, map[string]string{"PROSODY_EXTRA_MODULES": "no_such_module_here"})
	s := initsteps.New(initsteps.Config{Env: env})
	_, err := runConfig(t, s)
	var se *initsteps.StageError
	if !errors.As(err, &se) || se.Stage != "check" || !strings.Contains(err.Error(), "mod_no_such_module_here") {
		t.Fatalf("err = %v; want the check stage to name mod_no_such_module_here", err)
	}
}

// Prosody's environment never carries a PROSODY_* variable (secrets among them).
func TestChildEnvDropsProsodyVariables(t *testing.T) {
	_, env := server(t, map[string]string{"PROSODY_ADMIN_PASSWORD": "hunter2", "PROSODY_ADMINS": "admin@localhost"})
	env = append(env, "NOTIFY_SOCKET=/elsewhere", "LANG=C.UTF-8")
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := run(t, s, initsteps.Preamble()); err != nil {
		t.Fatal(err)
	}
	got := s.ChildEnv("/run/notify.sock")
	for _, kv := range got {
		if strings.HasPrefix(kv, "PROSODY_") || strings.Contains(kv, "hunter2") || kv == "NOTIFY_SOCKET=/elsewhere" {
			t.Errorf("child env has %q", kv)
		}
	}
	for _, want := range []string{"LANG=C.UTF-8", "NOTIFY_SOCKET=/run/notify.sock", "CREDENTIALS_DIRECTORY=" + s.Paths.Credentials} {
		if !slices.Contains(got, want) {
			t.Errorf("child env lacks %q", want)
		}
	}
}

// The prosody user owns the data volume. If it replaces $DATA/secrets by a
// link to a root directory, the secrets stage (root) refuses it: nothing is
// generated in, read from or re-owned in the root directory.
func TestSecretsRefuseALinkPlantedByProsody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it checks what the root entrypoint does in prosody's data volume")
	}
	root, env := server(t, nil)
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := run(t, s, initsteps.Preamble(), []initsteps.Stage[*initsteps.State]{initsteps.Plan}); err != nil {
		t.Fatal(err)
	}
	if len(pfe.CredentialNames(s.Plan)) == 0 {
		t.Fatal("the development profile generates no secret: this test needs one that does")
	}
	for d := filepath.Dir(root); d != filepath.Dir(filepath.Dir(filepath.Dir(root))); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil { // prosody must reach $DATA
			t.Fatal(err)
		}
	}
	vault := filepath.Join(root, "vault")
	if err := os.Mkdir(vault, 0o700); err != nil {
		t.Fatal(err)
	}
	prosodytest.AsProsody(t, "ln", "-s", vault, filepath.Join(s.Settings.DataDir, "secrets"))

	_, err := run(t, s, []initsteps.Stage[*initsteps.State]{initsteps.Secrets})
	if !errors.Is(err, atomicfile.ErrUnsafeLink) || !strings.Contains(err.Error(), filepath.Join(s.Settings.DataDir, "secrets")) {
		t.Fatalf("err = %v; want a refusal naming the planted link", err)
	}
	fi, err := os.Stat(vault)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o700 {
		t.Errorf("the root directory is now owned by %d, mode %#o", st.Uid, fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(vault); len(entries) != 0 {
		t.Errorf("secrets were written into the root directory: %v", entries)
	}
}
