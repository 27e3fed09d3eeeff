package supervise_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// A program that could not replace the entrypoint (the prosodyctl wrapper)
// exits as a shell's would:
// 127 when it does not exist, 126 when it exists but cannot run. The code
// comes from the error's values: a path that merely reads "not found" (a
// directory so named) holding a file that is not executable is 126.
func TestStartFailureCodeOfExecReplace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not found")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	noExec := filepath.Join(dir, "prosodyctl")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		name, prog, path string
		want             int
	}{
		{name: "not in PATH", prog: "prosodyctl", path: empty, want: supervise.CodeNotFound},
		{name: "no such file", prog: filepath.Join(empty, "prosodyctl"), path: empty, want: supervise.CodeNotFound},
		{name: "not a directory on the way", prog: filepath.Join(noExec, "x"), path: empty, want: supervise.CodeNotFound},
		{name: "not executable, by path", prog: noExec, path: empty, want: supervise.CodeNotExecutable},
		{name: "not executable, in PATH", prog: "prosodyctl", path: dir, want: supervise.CodeNotExecutable},
		{name: "a directory", prog: dir, path: empty, want: supervise.CodeNotExecutable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Every case fails before exec: the test process is never replaced.
			err := supervise.ExecReplace(tc.prog, nil, []string{"PATH=" + tc.path}, nil)
			if err == nil {
				t.Fatal("ExecReplace returned no error")
			}
			if got := supervise.StartFailureCode(err); got != tc.want {
				t.Errorf("StartFailureCode(%v) = %d, want %d", err, got, tc.want)
			}
		})
	}
}
