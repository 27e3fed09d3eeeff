package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
	"github.com/prosody-pfe/prosody-pfe/pkg/hooks"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// failRecorder is a Config.Fail that records every error and answers code.
type failRecorder struct {
	mu   sync.Mutex
	errs []error
	code int
}

func (f *failRecorder) fail(err error) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
	return f.code
}

// serverEnv is a development server's environment under a fresh root, with
// the repository's config tree, and its health address; over are NAME=VALUE
// pairs that replace or add variables.
func serverEnv(t *testing.T, over ...string) ([]string, string) {
	t.Helper()
	root := t.TempDir()
	configDir, err := filepath.Abs(filepath.Join("..", "..", "config"))
	if err != nil {
		t.Fatal(err)
	}
	vars, ports, err := entrypointtest.ServerEnv(root, configDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range over {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env, "127.0.0.1:" + strconv.Itoa(ports.Health)
}

func hooksDir(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PROSODY_HOOKS_DIR="); ok {
			return v
		}
	}
	return ""
}

// A bad environment ends the run through Fail, with every problem listed,
// before the health endpoints or anything else start.
func TestBadEnvironmentEndsThroughFailBeforeAnythingStarts(t *testing.T) {
	env, healthAddr := serverEnv(t, "PROSODY_C2S_PORT=many")
	f := &failRecorder{code: 78}
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, err := Run(ctx, Config{Env: env, Signals: &supervise.Signals{}, Stderr: &stderr, Fail: f.fail})
	if err != nil || code != 78 {
		t.Fatalf("Run = %d, %v; want Fail's 78 and no error", code, err)
	}
	var probs *settings.Problems
	if len(f.errs) != 1 || !errors.As(f.errs[0], &probs) || !strings.Contains(f.errs[0].Error(), "PROSODY_C2S_PORT") {
		t.Fatalf("Fail got %v, want one *settings.Problems naming PROSODY_C2S_PORT", f.errs)
	}
	if c, err := net.DialTimeout("tcp", healthAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on the health address %s after a bad environment", healthAddr)
	}
}

// The health endpoints that cannot listen are a configuration error naming
// PROSODY_HEALTH_LISTEN, reported through Fail.
func TestHealthListenerInUseIsAConfigurationError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env, _ := serverEnv(t, "PROSODY_HEALTH_LISTEN="+l.Addr().String())
	f := &failRecorder{code: 78}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, err := Run(ctx, Config{Env: env, Signals: &supervise.Signals{}, Stderr: &bytes.Buffer{}, Fail: f.fail})
	if err != nil || code != 78 || len(f.errs) != 1 {
		t.Fatalf("Run = %d, %v, Fail got %v; want one failure and Fail's code", code, err, f.errs)
	}
	if !initsteps.IsConfig(f.errs[0]) || !strings.Contains(f.errs[0].Error(), "PROSODY_HEALTH_LISTEN") {
		t.Errorf("Fail got %v, want a configuration error naming PROSODY_HEALTH_LISTEN", f.errs[0])
	}
}

// A failing init hook (after render and check, with real Prosody) stops
// start-up through Fail with the hook's error: prosody never starts.
func TestFailingStageEndsRunWithFailsCode(t *testing.T) {
	env, _ := serverEnv(t)
	if err := os.WriteFile(filepath.Join(hooksDir(env), "10-fail.sh"), []byte("exit 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &failRecorder{code: 42}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, err := Run(ctx, Config{Env: env, Signals: &supervise.Signals{}, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Fail: f.fail})
	if err != nil || code != 42 {
		t.Fatalf("Run = %d, %v; want Fail's 42 and no error", code, err)
	}
	var stage *initsteps.StageError
	var exit *hooks.ExitError
	if len(f.errs) != 1 || !errors.As(f.errs[0], &stage) || stage.Stage != "hook/10-fail.sh" || !errors.As(f.errs[0], &exit) {
		t.Fatalf("Fail got %v, want the failure of stage hook/10-fail.sh", f.errs)
	}
}

// SIGTERM while an init stage runs (a long hook) ends the run with 0 at
// once, without Fail and without starting prosody: `docker stop` does not
// wait for the hook.
func TestStopDuringStagesEndsWithZero(t *testing.T) {
	env, _ := serverEnv(t)
	marker := filepath.Join(t.TempDir(), "hook-started")
	hook := fmt.Sprintf("touch %s\nexec sleep 120\n", marker)
	if err := os.WriteFile(filepath.Join(hooksDir(env), "10-slow.sh"), []byte(hook), 0o644); err != nil {
		t.Fatal(err)
	}
	// The test process must not die of its own SIGTERM: this registration
	// is the one the supervisor would own.
	sigs := supervise.Notify()
	defer sigs.Stop()
	f := &failRecorder{code: 42}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	var stderr entrypointtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() {
		code, err := Run(ctx, Config{Env: env, Signals: sigs, Stdout: &bytes.Buffer{}, Stderr: &stderr, Fail: f.fail})
		done <- result{code, err}
	}()
	wait.Until(t, 2*time.Minute, "the hook to start", func() error {
		_, err := os.Stat(marker)
		return err
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != 0 || r.err != nil || len(f.errs) != 0 {
			t.Fatalf("Run = %d, %v, Fail got %v; want 0, no error, no failure", r.code, r.err, f.errs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end within 30s of SIGTERM during a hook")
	}
	if !strings.Contains(stderr.String(), "prosody was not started") {
		t.Errorf("log lacks the stop during the stages:\n%s", stderr.String())
	}
}

// Run refuses a config without the entrypoint's signal registration or exit
// table instead of running prosody unsupervised.
func TestRunNeedsSignalsAndFail(t *testing.T) {
	if _, err := Run(context.Background(), Config{Fail: func(error) int { return 1 }}); err == nil {
		t.Error("Run without Signals: no error")
	}
	if _, err := Run(context.Background(), Config{Signals: &supervise.Signals{}}); err == nil {
		t.Error("Run without Fail: no error")
	}
}
