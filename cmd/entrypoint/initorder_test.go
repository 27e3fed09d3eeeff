package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEarlySignalInitialisesRightAfterOSSignal: in the real binary, package
// earlysignal is the first package initialised after os/signal, so the window
// in which a SIGTERM makes PID 1 exit 2 ends about a millisecond after exec,
// not after the metrics, protobuf and logging packages (~16 ms on a loaded
// machine). A new import that pulls in a package sorting before it with its
// own init work, or a move of the package outside the module path, fails
// here. The order is read from the runtime itself (GODEBUG=inittrace=1).
func TestEarlySignalInitialisesRightAfterOSSignal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "entrypoint")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("entrypoint version: %v\n%s", err, stderr.String())
	}
	var order []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "init" {
			order = append(order, f[1])
		}
	}
	const early = "github.com/prosody-pfe/prosody-pfe/pkg/earlysignal"
	i := indexOf(order, "os/signal")
	j := indexOf(order, early)
	if i < 0 || j != i+1 {
		t.Fatalf("init order: os/signal at %d, earlysignal at %d; want earlysignal right after os/signal:\n%s", i, j, strings.Join(order, "\n"))
	}
	if last := order[len(order)-1]; last != "main" {
		t.Errorf("last package initialised is %q, want main", last)
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
