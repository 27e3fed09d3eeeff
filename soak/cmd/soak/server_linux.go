package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
)

// serverConfig describes one entrypoint run. Dir is reused when set (a restart on the
// same data); otherwise a new directory is made under Parent.
type serverConfig struct {
	Entrypoint string            // the binary under test
	ConfigDir  string            // the repository's config/ tree
	Parent     string            // where new server directories are made
	Dir        string            // reuse this root (data/, runtime/, certs/, custom/, hooks/)
	Env        map[string]string // extra or overriding PROSODY_* variables ("" removes one)
}

// server is one entrypoint process running the Prosody pipeline on loopback, in its
// own process group, with its output kept in memory.
type server struct {
	cfg    serverConfig
	dir    string
	env    map[string]string
	c2s    int
	health int
	cmd    *exec.Cmd
	http   *http.Client

	stdout entrypointtest.Buffer // Prosody's console log
	stderr entrypointtest.Buffer // the entrypoint's log
	done   chan struct{}
}

// newServer prepares (does not start) a server with fresh free ports.
func newServer(cfg serverConfig) (*server, error) {
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp(cfg.Parent, "server-")
		if err != nil {
			return nil, fmt.Errorf("make server directory: %w", err)
		}
		dir = d
	}
	if err := entrypointtest.MakeRoot(dir); err != nil {
		return nil, fmt.Errorf("make server directories under %s: %w", dir, err)
	}
	ports, err := entrypointtest.NewPorts()
	if err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, dir: dir, c2s: ports.C2S, health: ports.Health, done: make(chan struct{}),
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	s.env = entrypointtest.Env(dir, cfg.ConfigDir, ports)
	s.env["PROSODY_STORAGE"] = "sqlite"
	for k, v := range cfg.Env {
		if v == "" {
			delete(s.env, k)
		} else {
			s.env[k] = v
		}
	}
	return s, nil
}

// environ is the entrypoint's whole environment: PATH and the PROSODY_* variables.
func (s *server) environ() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	return env
}

// start starts the entrypoint in its own process group. Its exit closes s.done.
func (s *server) start() error {
	s.cmd = exec.Command(s.cfg.Entrypoint)
	s.cmd.Env = s.environ()
	s.cmd.Stdout = &s.stdout
	s.cmd.Stderr = &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.cfg.Entrypoint, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }() // owned by s: stop and kill wait for done
	return nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// exited reports whether the entrypoint has exited, and its code as a shell
// shows it (128+N when signal N killed it).
func (s *server) exited() (int, bool) {
	select {
	case <-s.done:
		return s.code(), true
	default:
		return 0, false
	}
}

// wait waits up to d for the exit and returns the code, or false on timeout.
func (s *server) wait(d time.Duration) (int, bool) {
	select {
	case <-s.done:
		return s.code(), true
	case <-time.After(d):
		return 0, false
	}
}

// code is the exit code once done; a death by signal N is 128+N, as a shell and
// Docker report it.
func (s *server) code() int {
	if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return s.cmd.ProcessState.ExitCode()
}

// killedBySignal reports whether the entrypoint died of a signal instead of
// exiting (for a SIGTERM that came before its handlers were installed).
func (s *server) killedBySignal() bool {
	ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// stop sends SIGTERM and waits up to grace, then SIGKILLs the group. It returns
// the exit code, or an error when the grace period ran out.
func (s *server) stop(grace time.Duration) (int, error) {
	if code, ok := s.exited(); ok {
		return code, nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code, ok := s.wait(grace); ok {
		return code, nil
	}
	s.killGroup()
	return -1, fmt.Errorf("entrypoint did not exit within %s of SIGTERM; killed its group", grace)
}

// killGroup SIGKILLs the entrypoint's process group (entrypoint and prosody) and
// waits for the entrypoint to be gone.
func (s *server) killGroup() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

func (s *server) Stdout() string { return s.stdout.String() }
func (s *server) Stderr() string { return s.stderr.String() }

// get fetches a health endpoint.
func (s *server) get(path string) (int, []byte, error) {
	resp, err := s.http.Get("http://127.0.0.1:" + strconv.Itoa(s.health) + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// ready reports whether /readyz answers 200.
func (s *server) ready() bool {
	code, _, err := s.get("/readyz")
	return err == nil && code == http.StatusOK
}

// poll calls cond every step until it is true; it fails after d or when the
// entrypoint exits first.
func (s *server) poll(d, step time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return nil
		}
		if code, ok := s.exited(); ok {
			return fmt.Errorf("entrypoint exited (code %d) while waiting for %s", code, what)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(step)
	}
}

// stopAfter stops the server and notes in res an error or an exit other than
// 0 or 143 (its SIGTERM), naming what the server was stopped after.
func (s *server) stopAfter(res *result, what string) {
	if code, err := s.stop(15 * time.Second); err != nil || (code != 0 && code != 143) {
		res.problem("stop after %s: code %d, %v", what, code, err)
	}
}

// chatting creates the two accounts users and logs them in with the chat
// clients (20s).
func (s *server) chatting(cc clientConfig, users [2]account) (*chat, error) {
	if err := s.createUsers(users[:]); err != nil {
		return nil, err
	}
	return startChat(cc, s.c2s, s.ca(), users[0], users[1], 20*time.Second)
}

// prosodyPID is the pid of the running prosody as /status names it.
func (s *server) prosodyPID() (int, error) {
	st, _, err := s.status()
	if err != nil {
		return 0, err
	}
	if st.Child.PID <= 0 {
		return 0, fmt.Errorf("/status names no running prosody")
	}
	return st.Child.PID, nil
}

// waitReplaced waits up to d, looking every step, until a prosody other than
// old runs and /readyz answers 200.
func (s *server) waitReplaced(old int, d, step time.Duration) error {
	return s.poll(d, step, fmt.Sprintf("a new prosody (not pid %d) ready", old), func() bool {
		if !s.ready() {
			return false
		}
		st, _, err := s.status()
		return err == nil && st.Child.PID != old && st.Child.Running
	})
}

// waitReady waits up to d for /readyz 200.
func (s *server) waitReady(d time.Duration) error {
	return s.poll(d, 20*time.Millisecond, "/readyz 200", s.ready)
}

// status is the part of /status the soak reads.
type status struct {
	State      string `json:"state"`
	ConfigHash string `json:"config_hash"`
	Child      struct {
		PID           int     `json:"pid"`
		Running       bool    `json:"running"`
		UptimeSeconds float64 `json:"uptime_seconds"`
		Restarts      int     `json:"restarts"`
		LastExit      *struct {
			PID  int `json:"pid"`
			Code int `json:"code"`
		} `json:"last_exit"`
	} `json:"child"`
	LastReload *struct {
		Outcome string    `json:"outcome"`
		At      time.Time `json:"at"`
		Error   string    `json:"error"`
	} `json:"last_reload"`
}

func (s *server) status() (status, []byte, error) {
	var st status
	code, body, err := s.get("/status")
	if err != nil {
		return st, nil, fmt.Errorf("GET /status: %w", err)
	}
	if code != http.StatusOK {
		return st, body, fmt.Errorf("GET /status: status %d", code)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, body, fmt.Errorf("decode /status: %w", err)
	}
	return st, body, nil
}

// metric returns the sum of every sample of the named metric family in /metrics
// (all label sets), and the page itself.
func (s *server) metric(name string) (float64, []byte, error) {
	code, body, err := s.get("/metrics")
	if err != nil || code != http.StatusOK {
		return 0, body, fmt.Errorf("GET /metrics: %d %v", code, err)
	}
	v, err := sumSamples(body, name)
	return v, body, err
}

// sumSamples adds up the samples of one metric in the Prometheus text format.
func sumSamples(page []byte, name string) (float64, error) {
	var sum float64
	found := false
	for _, line := range strings.Split(string(page), "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "{") {
			continue // a longer name with the same prefix
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: bad sample %q: %w", name, line, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("metric %s not in /metrics", name)
	}
	return sum, nil
}

// admin runs one admin shell command on the running Prosody (data/prosody.sock).
func (s *server) admin(cmd string) (adminsock.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := adminsock.Dial(ctx, filepath.Join(s.dir, "data", "prosody.sock"))
	if err != nil {
		return adminsock.Result{}, err
	}
	defer conn.Close()
	return conn.Exec(ctx, cmd)
}

// createUsers creates accounts through Prosody's admin shell (user:create).
func (s *server) createUsers(users []account) error {
	for _, u := range users {
		res, err := s.admin(fmt.Sprintf("user:create(%q, %q, %q)", u.JID, u.Password, "prosody:registered"))
		if err != nil {
			return fmt.Errorf("create account %s: %w", u.JID, err)
		}
		if !res.OK {
			return fmt.Errorf("create account %s: prosody said %s", u.JID, res.Message)
		}
	}
	return nil
}

// ca is the self-signed certificate the development environment generates.
func (s *server) ca() string { return filepath.Join(s.dir, "data", "certs", "selfsigned.crt") }

func (s *server) renderedPath() string { return filepath.Join(s.dir, "runtime", "prosody.cfg.lua") }
