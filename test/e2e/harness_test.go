// Package e2e tests the entrypoint binary end to end: real Prosody 13, real
// signals, real XMPP clients. Everything listens on 127.0.0.1, on ports picked
// free at run time. Run as root (Prosody is dropped to the prosody user).
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
)

// entrypointBin is the binary under test, built once by TestMain.
var entrypointBin string

// repoRoot is the repository's top directory.
var repoRoot string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	dir, err := os.MkdirTemp("", "entrypoint-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	entrypointBin = filepath.Join(dir, "entrypoint")
	build := exec.Command("go", "build", "-o", entrypointBin, "./cmd/entrypoint")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build entrypoint:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a TCP port free on 127.0.0.1, below the ephemeral range
// and never handed out twice (entrypointtest.FreePorts).
func freePort(t testing.TB) int {
	t.Helper()
	p, err := entrypointtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

// Server is one entrypoint process running the Prosody pipeline.
type Server struct {
	t      testing.TB
	Cmd    *exec.Cmd
	Dir    string            // the test's root: data/, runtime/, certs/, custom/, hooks/
	Env    map[string]string // the PROSODY_* environment it was started with
	C2S    int
	S2S    int
	HTTP   int
	HTTPS  int
	Health int
	Domain string

	stdout entrypointtest.Buffer // Prosody's log (console sink)
	stderr entrypointtest.Buffer // the entrypoint's log
	done   chan struct{}
	err    error
}

// Options adjust a Server before it starts.
type Options struct {
	Profile     string
	Environment string
	Domain      string
	Env         map[string]string // extra or overriding PROSODY_* variables
	ConfigDir   string            // default: the repository's config/
	Args        []string          // entrypoint arguments; default none (the prosody pipeline)
	Dir         string            // reuse a root directory (restart on the same data)
}

// NewServer prepares (but does not start) an entrypoint with its own
// directories and free ports.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Profile == "" {
		o.Profile = "development"
	}
	if o.Environment == "" {
		o.Environment = "development"
	}
	if o.Domain == "" {
		o.Domain = "localhost"
	}
	if o.ConfigDir == "" {
		o.ConfigDir = filepath.Join(repoRoot, "config")
	}
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	env, ports, err := entrypointtest.ServerEnv(dir, o.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Dir: dir, Domain: o.Domain, done: make(chan struct{}),
		C2S: ports.C2S, S2S: ports.S2S, HTTP: ports.HTTP, HTTPS: ports.HTTPS, Health: ports.Health}
	s.Env = env
	s.Env["PROSODY_PROFILE"], s.Env["PROSODY_ENVIRONMENT"], s.Env["PROSODY_DOMAIN"] = o.Profile, o.Environment, o.Domain
	for k, v := range o.Env {
		if v == "" {
			delete(s.Env, k)
		} else {
			s.Env[k] = v
		}
	}
	s.Cmd = exec.Command(entrypointBin, o.Args...)
	return s
}

// Start starts the entrypoint; t.Cleanup stops it (SIGTERM, then SIGKILL) and
// prints its logs when the test failed.
func (s *Server) Start() *Server {
	s.t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	s.Cmd.Env = env
	s.Cmd.Stdout = &s.stdout
	s.Cmd.Stderr = &s.stderr
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.Cmd.Start(); err != nil {
		s.t.Fatalf("start entrypoint: %v", err)
	}
	go func() { s.err = s.Cmd.Wait(); close(s.done) }()
	owner := s.t // In may hand s to a subtest that ends before this cleanup runs
	owner.Cleanup(func() {
		s.Stop(15 * time.Second)
		if owner.Failed() {
			owner.Logf("entrypoint stderr:\n%s", tail(s.Stderr(), 8000))
			owner.Logf("prosody stdout:\n%s", tail(s.Stdout(), 8000))
		}
	})
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// In makes s report its failures (WaitFor, Status, …) to t from now on: for
// servers started together by a test and checked in its subtests. The server
// is still stopped, and its logs printed on failure, by the test that started it.
func (s *Server) In(t testing.TB) *Server {
	s.t = t
	return s
}

// Stop sends SIGTERM and waits up to grace for the exit, then SIGKILLs the group.
// It returns the exit code (-1 when killed by the harness).
func (s *Server) Stop(grace time.Duration) int {
	select {
	case <-s.done:
		return s.ExitCode()
	default:
	}
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.ExitCode()
	case <-time.After(grace):
		_ = syscall.Kill(-s.Cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		return -1
	}
}

// Wait waits up to d for the entrypoint to exit and returns its code.
func (s *Server) Wait(d time.Duration) (int, bool) {
	select {
	case <-s.done:
		return s.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// ExitCode is the entrypoint's exit code once it exited.
func (s *Server) ExitCode() int {
	if s.Cmd.ProcessState == nil {
		return -1
	}
	return s.Cmd.ProcessState.ExitCode()
}

func (s *Server) Stdout() string { return s.stdout.String() }
func (s *Server) Stderr() string { return s.stderr.String() }

// Logged reports whether the entrypoint's log shows every one of wants within
// a few seconds: a line the entrypoint wrote before an event the test saw
// (a metric, a reload outcome) still has to come through the pipe.
func (s *Server) Logged(wants ...string) bool {
	s.t.Helper()
	return wait.For(5*time.Second, func() error {
		for _, w := range wants {
			if !strings.Contains(s.Stderr(), w) {
				return fmt.Errorf("no %q", w)
			}
		}
		return nil
	}) == nil
}

// URL is an endpoint of the health server.
func (s *Server) URL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.Health) + path
}

// Get fetches a health endpoint and returns its status code and body.
func (s *Server) Get(path string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(s.URL(path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// WaitReady waits until /readyz answers 200, failing the test after d or when
// the entrypoint exits.
func (s *Server) WaitReady(d time.Duration) {
	s.t.Helper()
	s.WaitFor(d, "/readyz 200", func() bool {
		code, _, err := s.Get("/readyz")
		return err == nil && code == 200
	})
}

// WaitFor polls cond until it is true, failing the test after d or when the
// entrypoint exits first.
func (s *Server) WaitFor(d time.Duration, what string, cond func() bool) {
	s.t.Helper()
	wait.Until(s.t, d, what, func() error {
		select {
		case <-s.done:
			return wait.Abort(fmt.Errorf("entrypoint exited (code %d)", s.ExitCode()))
		default:
		}
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

// Status is the part of /status the tests read.
type Status struct {
	State       string   `json:"state"`
	Reason      string   `json:"reason"`
	Profile     string   `json:"profile"`
	Environment string   `json:"environment"`
	Features    []string `json:"features"`
	Hosts       []string `json:"hosts"`
	ConfigHash  string   `json:"config_hash"`
	Child       struct {
		PID      int  `json:"pid"`
		Running  bool `json:"running"`
		Restarts int  `json:"restarts"`
	} `json:"child"`
	LastReload *struct {
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"last_reload"`
}

// Status fetches and decodes /status.
func (s *Server) Status() Status {
	s.t.Helper()
	code, body, err := s.Get("/status")
	if err != nil || code != 200 {
		s.t.Fatalf("GET /status: %d %v", code, err)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		s.t.Fatalf("decode /status: %v\n%s", err, body)
	}
	return st
}

// ProsodyPID returns the pid of the supervised prosody (from /status).
func (s *Server) ProsodyPID() int {
	s.t.Helper()
	return s.Status().Child.PID
}

// RenderedConfig returns the prosody.cfg.lua the server runs.
func (s *Server) RenderedConfig() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "runtime", "prosody.cfg.lua"))
	if err != nil {
		s.t.Fatalf("read rendered config: %v", err)
	}
	return string(b)
}

// runCmd runs a command with a deadline and returns its combined output.
func runCmd(t testing.TB, d time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
