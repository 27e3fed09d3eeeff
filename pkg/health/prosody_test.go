package health

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file starts real Prosody 13 for the tests: `prosody -F` with a minimal
// hand-written config (c2s on a free 127.0.0.1 port, no s2s, no TLS), run as the
// prosody user from /etc/passwd, as the supervisor would.

type prosody struct {
	cmd  *exec.Cmd
	c2s  string
	dir  string
	done chan struct{} // closed when the process was waited for
	mu   sync.Mutex
	out  strings.Builder
}

func (p *prosody) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *prosody) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *prosody) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal prosody %v: %v", sig, err)
	}
}

// waitExit waits for the process to end and returns its exit code (128+N for a signal).
func (p *prosody) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("prosody did not exit within 15s; output:\n%s", p.output())
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// prosodyIDs returns the uid and gid of the prosody user from /etc/passwd.
func prosodyIDs(t testing.TB) (int, int) {
	t.Helper()
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 3 && f[0] == "prosody" {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil {
				t.Fatalf("bad prosody entry in /etc/passwd: %q", line)
			}
			return uid, gid
		}
	}
	t.Fatal("no prosody user in /etc/passwd: install the Debian package prosody (13.x, bookworm-backports)")
	return 0, 0
}

// prosodyDir makes a directory tree the prosody user can use (t.TempDir's parent is
// 0700 root), removed at cleanup.
func prosodyDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "health-prosody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	uid, gid := prosodyIDs(t)
	for _, d := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "certs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProsody starts Prosody serving VirtualHost "example.test" in dir, with
// NOTIFY_SOCKET=notify when notify is not empty, and c2s on c2sPort. It is stopped
// (SIGTERM, then SIGKILL after 10s) at cleanup.
func startProsody(t *testing.T, dir string, c2sPort int, notify string) *prosody {
	t.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		t.Fatal("prosody not found: install the Debian package prosody (13.x, bookworm-backports)")
	}
	cfg := fmt.Sprintf(`data_path = %q
certificates = "certs"
c2s_ports = { %d }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
modules_enabled = { "saslauth", "ping" }
modules_disabled = { "s2s", "tls" }
c2s_require_encryption = false
log = { { levels = { min = "info" }, to = "console" } }
VirtualHost "example.test"
`, filepath.Join(dir, "data"), c2sPort)
	cfgPath := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prosody{c2s: net.JoinHostPort("127.0.0.1", strconv.Itoa(c2sPort)), dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "-F", "--config", cfgPath)
	p.cmd.Dir = dir
	p.cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if notify != "" {
		p.cmd.Env = append(p.cmd.Env, "NOTIFY_SOCKET="+notify)
	}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	uid, gid := prosodyIDs(t)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("prosody output:\n%s", p.output())
		}
	})
	return p
}

func itoa(n int) string { return strconv.Itoa(n) }
