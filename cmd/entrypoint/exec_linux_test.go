package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkExec is the exec overhead that bench/run compares with tini, in
// process: one op is fork+exec of the entrypoint until it exits. "version"
// starts no child (the binary's start-up: runtime, package initialisation,
// earlysignal); "plain" is `entrypoint -- true` with the health server off,
// as in the bench's like-for-like row. Run it with -benchtime=300x or more:
// the machine's noise is large against a few milliseconds.
func BenchmarkExec(b *testing.B) {
	bin := buildEntrypoint(b)
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "PROSODY_HEALTH_LISTEN=off", "PROSODY_LOG_FORMAT=json"}
	for _, bc := range []struct {
		name string
		argv []string
	}{
		{"version", []string{bin, "version"}},
		{"plain", []string{bin, "--", truePath}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				c := exec.Command(bc.argv[0], bc.argv[1:]...)
				c.Env = env
				if out, err := c.CombinedOutput(); err != nil {
					b.Fatalf("%v: %v\n%s", bc.argv, err, out)
				}
			}
		})
	}
}

// buildEntrypoint builds the binary as the Makefile's static target does.
func buildEntrypoint(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(tb.TempDir(), "entrypoint")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
