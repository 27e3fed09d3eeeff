package hooks

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}

func TestListOrderShellAndSkips(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "20-exec", "#!/bin/sh\necho 20\n", 0o755)
	write(t, dir, "10-plain.sh", "echo 10\n", 0o644)
	write(t, dir, "README.md", "docs\n", 0o644)
	write(t, dir, ".hidden", "#!/bin/sh\n", 0o755)
	if err := os.Mkdir(filepath.Join(dir, "30-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	hooks, skipped, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 2 || hooks[0].Name != "10-plain.sh" || !hooks[0].Shell || hooks[1].Name != "20-exec" || hooks[1].Shell {
		t.Fatalf("hooks = %+v", hooks)
	}
	if len(skipped) != 2 || skipped[0].Name != "30-dir" || skipped[1].Name != "README.md" {
		t.Fatalf("skipped = %+v", skipped)
	}
	var out bytes.Buffer
	for _, h := range hooks {
		if err := h.Run(context.Background(), RunOptions{Env: []string{"PATH=" + os.Getenv("PATH")}, Stdout: &out}); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != "10\n20\n" {
		t.Fatalf("output %q, want 10 then 20", out.String())
	}
}

func TestMissingDirectoryHasNoHooks(t *testing.T) {
	hooks, skipped, err := List(filepath.Join(t.TempDir(), "absent"))
	if err != nil || hooks != nil || skipped != nil {
		t.Fatalf("List(absent) = %v %v %v", hooks, skipped, err)
	}
}

func TestFailureNamesHookAndCode(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "01-fail", "#!/bin/sh\nexit 3\n", 0o755)
	write(t, dir, "02-killed.sh", "kill -TERM $$\n", 0o644)
	// The kernel reports a missing interpreter as ENOENT: 127, like a missing command.
	write(t, dir, "03-badinterp", "#!/nonexistent/interp\n", 0o755)
	write(t, dir, "04-garbage", "\x00\x01not a program", 0o755)
	hooks, _, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{3, 128 + 15, 127, 126} {
		err := hooks[i].Run(context.Background(), RunOptions{Env: []string{"PATH=" + os.Getenv("PATH")}})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != want || ee.Hook != hooks[i].Name {
			t.Fatalf("%s: err = %v, want exit code %d", hooks[i].Name, err, want)
		}
		if !strings.Contains(err.Error(), hooks[i].Name) {
			t.Errorf("error %q does not name the hook", err)
		}
	}
}

func TestEnvDropsSecretValuesKeepsFiles(t *testing.T) {
	got := Env([]string{"PROSODY_DB_PASSWORD=s3cret", "PROSODY_DB_PASSWORD_FILE=/run/secrets/db", "PROSODY_DOMAIN=example.com"},
		[]string{"PROSODY_DB_PASSWORD"})
	want := "PROSODY_DB_PASSWORD_FILE=/run/secrets/db PROSODY_DOMAIN=example.com"
	if strings.Join(got, " ") != want {
		t.Fatalf("Env = %v, want %s", got, want)
	}
}
