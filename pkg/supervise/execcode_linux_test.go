package supervise

import (
	"os"
	"path/filepath"
	"testing"
)

// A program that cannot replace the entrypoint gets the shell's codes: 127
// when it is nowhere in PATH or its path does not exist, 126 when it exists
// but cannot be executed.
func TestExecCodeIsTheShells(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "not-a-program")
	if err := os.WriteFile(plain, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + dir}
	for _, c := range []struct {
		name string
		want int
	}{
		{"no-such-program-for-exec-code", CodeNotFound},
		{filepath.Join(dir, "missing"), CodeNotFound},
		{plain, CodeNotExecutable},
		{dir, CodeNotExecutable},
	} {
		err := ExecReplace(c.name, nil, env, nil)
		if err == nil {
			t.Fatalf("ExecReplace(%q) returned no error", c.name)
		}
		if got := ExecCode(err); got != c.want {
			t.Errorf("ExecCode(%v) = %d, want %d", err, got, c.want)
		}
	}
}
