package listeners

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
)

func ports(t *testing.T, n int) []int {
	t.Helper()
	p, err := entrypointtest.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// A held socket queues connections while nobody accepts (the kernel
// completes the handshake), is passed non-blocking, and a port in use is a
// *BindError naming the port's variable.
func TestOpenQueuesAndRefusesBusyPort(t *testing.T) {
	p := ports(t, 2)
	set, skipped, err := Open([]Spec{{"c2s", "127.0.0.1", p[0]}})
	if err != nil || len(skipped) != 0 {
		t.Fatalf("Open: %v %v", err, skipped)
	}
	defer set.Close()
	addr := "127.0.0.1:" + strconv.Itoa(p[0])
	for range 3 {
		if err := dial(addr); err != nil {
			t.Fatalf("connect to a held socket nobody accepts on: %v", err)
		}
	}
	if q := set.Queued(); len(q) != 1 || q[0] != 3 {
		t.Errorf("Queued = %v, want [3]", q)
	}
	files, env := set.Files()
	if len(files) != 1 || len(env) != 2 || env[0] != "LISTEN_FDS=1" || env[1] != "LISTEN_FDNAMES=c2s" {
		t.Fatalf("Files = %v %q", files, env)
	}
	rc, _ := files[0].SyscallConn()
	_ = rc.Control(func(fd uintptr) {
		fl, _ := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if fl&unix.O_NONBLOCK == 0 {
			t.Error("the held socket is blocking: Prosody's event loop needs it non-blocking")
		}
	})

	_, _, err = Open([]Spec{{"c2s", "127.0.0.1", p[0]}})
	var be *BindError
	if !errors.As(err, &be) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Open on a held port: %v, want a *BindError for EADDRINUSE", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "PROSODY_C2S_PORT") || !strings.Contains(msg, "127.0.0.1:"+strconv.Itoa(p[0])) {
		t.Errorf("error %q does not name the variable and the address", msg)
	}
	// All or nothing: the free port of a failed Open is not left bound.
	if _, _, err := Open([]Spec{{"s2s", "127.0.0.1", p[1]}, {"c2s", "127.0.0.1", p[0]}}); err == nil {
		t.Fatal("Open with one port in use succeeded")
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p[1]))
	if err != nil {
		t.Fatalf("a failed Open left port %d bound: %v", p[1], err)
	}
	l.Close()
}

// Prepare keeps the sockets both sets share (and their queued connections),
// binds the new ones, and Files closes the old ones only at the next start;
// Discard returns to the held set.
func TestPrepareSwitchesAtNextStart(t *testing.T) {
	p := ports(t, 3)
	a, b, c := Spec{"c2s", "127.0.0.1", p[0]}, Spec{"s2s", "127.0.0.1", p[1]}, Spec{"c2s", "127.0.0.1", p[2]}
	set, _, err := Open([]Spec{a, b})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	first, _ := set.Files()

	if err := dial(b.Address()); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Prepare([]Spec{c, b}); err != nil {
		t.Fatal(err)
	}
	if err := dial(a.Address()); err != nil {
		t.Errorf("old socket closed before the next start: %v", err)
	}
	if err := dial(c.Address()); err != nil {
		t.Errorf("new socket not bound by Prepare: %v", err)
	}
	files, env := set.Files()
	if len(files) != 2 || files[1] != first[1] || env[1] != "LISTEN_FDNAMES=c2s:s2s" {
		t.Fatalf("after Prepare, Files = %v %q: want the new c2s, then the same s2s file", files, env)
	}
	if err := dial(a.Address()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("old socket after the next start: %v, want refused", err)
	}
	if q := set.Queued(); q[1] != 1 {
		t.Errorf("the kept s2s socket lost its queued connection: Queued = %v", q)
	}

	// Discard: a prepared set that is not installed is dropped.
	if _, err := set.Prepare([]Spec{a}); err != nil {
		t.Fatal(err)
	}
	set.Discard()
	if err := dial(a.Address()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("socket of a discarded set: %v, want refused", err)
	}
	if got := set.Specs(); len(got) != 2 || got[0] != c {
		t.Errorf("Specs after Discard = %v", got)
	}
	// A port in use leaves the set as it was.
	busy, err := net.Listen("tcp", a.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := set.Prepare([]Spec{a, b}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Prepare onto a busy port: %v", err)
	}
	if files, _ := set.Files(); len(files) != 2 {
		t.Errorf("a failed Prepare changed the set: %v", files)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if files, env := set.Files(); files != nil || env != nil {
		t.Errorf("Files after Close = %v %q", files, env)
	}
}
