package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// collector gathers messages delivered by Run for assertions with a deadline.
type collector struct {
	mu   sync.Mutex
	msgs []Message
}

func (c *collector) add(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
}

// at returns message i; Run may still be appending, hence the lock.
func (c *collector) at(i int) Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[i]
}

// waitFor waits until a message matching ok arrived after index from, and returns its index.
func (c *collector) waitFor(t *testing.T, from int, what string, ok func(Message) bool) int {
	t.Helper()
	found := -1
	wait.Until(t, 15*time.Second, "a "+what+" message", func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i := from; i < len(c.msgs); i++ {
			if ok(c.msgs[i]) {
				found = i
				return nil
			}
		}
		return fmt.Errorf("got %+v", c.msgs[from:])
	})
	return found
}

func runListener(t *testing.T, l *Listener) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	c := &collector{}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, c.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

// TestProsodyLifecycle runs real Prosody 13 as the prosody user with NOTIFY_SOCKET
// pointing at a socket file given to that user (mode 0600, so ownership is what
// lets it send), and checks the READY=1, RELOADING=1 (SIGHUP), READY=1,
// STOPPING=1 (SIGTERM) sequence it sends.
// (Abstract names are not tried with Prosody: 13.0.1 with Debian's LuaSocket fails
// to connect to them with "Invalid argument" and exits 1.)
func TestProsodyLifecycle(t *testing.T) {
	dir := prosodytest.Dir(t, "data", "certs")
	path := filepath.Join(dir, "notify.sock")
	uid, gid := prosodytest.IDs(t)
	l, err := Listen(path, uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Fatalf("socket = %v %d:%d, want a socket 0600 owned by prosody %d:%d", fi.Mode(), st.Uid, st.Gid, uid, gid)
	}
	c := runListener(t, l)
	p := prosodytest.Start(t, prosodytest.Options{
		Dir:    dir,
		Config: prosodytest.MinimalConfig(filepath.Join(dir, "data"), prosodytest.FreePort(t)),
		Env:    []string{"NOTIFY_SOCKET=" + l.Path()},
	})

	i := c.waitFor(t, 0, "READY=1", func(m Message) bool { return m.Ready })
	if got := c.at(i).PID; got != p.PID() {
		t.Errorf("sender pid = %d, want prosody's %d", got, p.PID())
	}
	p.Signal(t, syscall.SIGHUP)
	i = c.waitFor(t, i+1, "RELOADING=1", func(m Message) bool { return m.Reloading && m.MonotonicUsec > 0 })
	i = c.waitFor(t, i+1, "READY=1 after reload", func(m Message) bool { return m.Ready })
	p.Signal(t, syscall.SIGTERM)
	c.waitFor(t, i+1, "STOPPING=1", func(m Message) bool { return m.Stopping })
}

func TestAbstractName(t *testing.T) {
	name := fmt.Sprintf("@prosody-pfe-test/%d/%d", os.Getpid(), time.Now().UnixNano())
	l, err := Listen(name, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if l.Path() != name {
		t.Fatalf("Path() = %q, want %q", l.Path(), name)
	}
	c := runListener(t, l)
	conn, err := net.Dial("unixgram", name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("READY=1\nSTATUS=up")); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, 0, "READY=1", func(m Message) bool { return m.Ready && m.Status == "up" })
}

func TestCloseRemovesSocketFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	l, err := Listen(path, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	c := runListener(t, l)
	conn, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("STATUS=warming up\nX")); err != nil {
		t.Fatal(err)
	}
	i := c.waitFor(t, 0, "STATUS", func(m Message) bool { return m.Status == "warming up" })
	if c.at(i).PID != os.Getpid() {
		t.Errorf("pid = %d, want %d", c.at(i).PID, os.Getpid())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file still there after Close: %v", err)
	}
}

func TestListenErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A stale socket (left by a crashed run) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	old, err := Listen(stale, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	_ = old.conn.Close() // close without removing, as a crash would
	l, err := Listen(stale, -1, -1)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	_ = l.Close()

	for _, tc := range []struct{ path, want string }{
		{"", "empty path"},
		{regular, "already exists"},
		{filepath.Join(dir, strings.Repeat("x", 120)), "longer than"},
		{filepath.Join(dir, "missing", "n.sock"), "no such file"},
	} {
		_, err := Listen(tc.path, -1, -1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen(%q) error = %v, want it to contain %q", tc.path, err, tc.want)
		}
	}
}

// TestOtherUsersCannotSend: a user other than the socket's owner (nobody, uid
// 65534, with the real sd_notify client systemd-notify) cannot send at all,
// while the owner (prosody, another process than the child) can and is
// reported with its own pid, for the caller to refuse.
func TestOtherUsersCannotSend(t *testing.T) {
	dir := prosodytest.Dir(t)
	path := filepath.Join(dir, "notify.sock")
	uid, gid := prosodytest.IDs(t)
	l, err := Listen(path, uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	c := runListener(t, l)
	env := []string{"NOTIFY_SOCKET=" + path}
	out, err := prosodytest.As(t, 65534, 65534, env, "systemd-notify", "STOPPING=1")
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("systemd-notify as nobody: %v %q, want it refused with permission denied", err, out)
	}
	if out, err := prosodytest.As(t, uid, gid, env, "systemd-notify", "STATUS=from prosody"); err != nil {
		t.Fatalf("systemd-notify as prosody: %v\n%s", err, out)
	}
	i := c.waitFor(t, 0, "STATUS from prosody", func(m Message) bool { return m.Status == "from prosody" })
	if pid := c.at(i).PID; pid <= 0 || pid == os.Getpid() {
		t.Errorf("sender pid = %d, want systemd-notify's own", pid)
	}
	for j := 0; j < i; j++ {
		if c.at(j).Stopping {
			t.Fatalf("nobody's STOPPING=1 got through: %+v", c.at(j))
		}
	}
}
