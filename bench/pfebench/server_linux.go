package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
)

// server is one Prosody deployment in a temporary directory: the directories,
// free loopback ports and environment the entrypoint needs, reused by every
// start so that the entrypoint and bare prosody run the same rendered config.
type server struct {
	dir                       string
	c2s, s2s, http, https, hp int
	env                       []string
	uid, gid                  int
	cmd                       *exec.Cmd
	log                       entrypointtest.Buffer
	done                      chan struct{}
}

// newServer prepares directories (owned by the prosody user, which Prosody runs
// as) and ports. profile may name a custom profile written into custom/.
func (b *bench) newServer(profile string, extraEnv ...string) (*server, error) {
	u, err := user.Lookup("prosody")
	if err != nil {
		return nil, fmt.Errorf("user prosody not found (install Debian package prosody): %w", err)
	}
	ports, err := entrypointtest.NewPorts()
	if err != nil {
		return nil, err
	}
	s := &server{c2s: ports.C2S, s2s: ports.S2S, http: ports.HTTP, https: ports.HTTPS, hp: ports.Health}
	s.uid, _ = strconv.Atoi(u.Uid)
	s.gid, _ = strconv.Atoi(u.Gid)
	if s.dir, err = os.MkdirTemp("", "pfebench-"); err != nil {
		return nil, err
	}
	if err := entrypointtest.MakeRoot(s.dir); err != nil {
		return nil, err
	}
	env := entrypointtest.Env(s.dir, b.configDir, ports)
	env["PROSODY_PROFILE"] = profile
	s.env = []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		s.env = append(s.env, k+"="+env[k])
	}
	s.env = append(s.env, extraEnv...)
	return s, nil
}

// chown gives the whole tree to the prosody user (the entrypoint runs as root
// and drops Prosody to that user).
func (s *server) chown() error {
	return filepath.Walk(s.dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, s.uid, s.gid)
	})
}

func (s *server) url(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.hp) + path
}

// start runs cmd with its output kept for error messages.
func (s *server) start(cmd *exec.Cmd) error {
	s.cmd = cmd
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	cmd.SysProcAttr = mergeAttr(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s.done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	return nil
}

func mergeAttr(a *syscall.SysProcAttr) *syscall.SysProcAttr {
	if a == nil {
		a = &syscall.SysProcAttr{}
	}
	a.Setpgid = true
	return a
}

// startEntrypoint starts the entrypoint's Prosody pipeline.
func (s *server) startEntrypoint(bin string) error {
	c := exec.Command(bin)
	c.Env = s.env
	return s.start(c)
}

// startBare starts `prosody -F` on the config the entrypoint rendered, as the
// prosody user, with the environment the entrypoint gives it (minus
// NOTIFY_SOCKET: bare prosody has no supervisor to tell).
func (s *server) startBare() error {
	data := filepath.Join(s.dir, "data")
	c := exec.Command("prosody", "-F", "--config", filepath.Join(s.dir, "runtime", "prosody.cfg.lua"))
	c.Dir = data
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + data,
		"CREDENTIALS_DIRECTORY=" + filepath.Join(s.dir, "runtime", "credentials")}
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}}
	return s.start(c)
}

// exited reports whether the started process has ended.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 15 s, then SIGKILLs the group.
func (s *server) stop() error {
	if s.cmd == nil || s.exited() {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		return fmt.Errorf("%s did not stop within 15s of SIGTERM", s.cmd.Path)
	}
}

func (s *server) remove() { _ = os.RemoveAll(s.dir) }

// tail is the end of the process's output, for error messages.
func (s *server) tail() string {
	out := s.log.String()
	if len(out) > 3000 {
		out = "…" + out[len(out)-3000:]
	}
	return out
}

// waitUntil polls cond every 2 ms until it holds; it fails when the process
// exits first or after d. It returns when cond first held.
func (s *server) waitUntil(d time.Duration, what string, cond func() bool) (time.Time, error) {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return time.Now(), nil
		}
		if s.exited() {
			return time.Time{}, fmt.Errorf("process exited while waiting for %s; its output:\n%s", what, s.tail())
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("timed out after %s waiting for %s; output:\n%s", d, what, s.tail())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// c2sAnswers opens an XMPP client stream and reports whether Prosody answers
// with stream features for the domain (what the entrypoint's probe checks).
func (s *server) c2sAnswers() bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.c2s), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"); err != nil {
		return false
	}
	var got []byte
	buf := make([]byte, 4096)
	for len(got) < 64<<10 {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if bytes.Contains(got, []byte("<stream:features")) {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// statusJSON is the part of /status the benchmark reads.
type statusJSON struct {
	State  string `json:"state"`
	Stages []struct {
		Name            string  `json:"name"`
		DurationSeconds float64 `json:"duration_seconds"`
	} `json:"stages"`
	Child struct {
		PID int `json:"pid"`
	} `json:"child"`
	Certs []struct {
		Host   string `json:"host"`
		Source string `json:"source"`
	} `json:"certs"`
	LastReload *struct {
		Outcome         string    `json:"outcome"`
		DurationSeconds float64   `json:"duration_seconds"`
		At              time.Time `json:"at"`
		Error           string    `json:"error"`
	} `json:"last_reload"`
}

var fastClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}

func (s *server) status() (statusJSON, error) {
	var st statusJSON
	resp, err := fastClient.Get(s.url("/status"))
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("decode /status: %w", err)
	}
	return st, nil
}

func (s *server) ready() bool {
	resp, err := fastClient.Get(s.url("/readyz"))
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// metric returns the value of one unlabelled sample of /metrics.
func (s *server) metric(name string) (float64, error) {
	resp, err := fastClient.Get(s.url("/metrics"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not in /metrics", name)
}

// freePort returns a TCP port free on 127.0.0.1 at the time of the call.
func freePort() int {
	p, err := entrypointtest.FreePorts(1)
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	return p[0]
}
