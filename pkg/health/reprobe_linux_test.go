package health

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// heldC2S is a scripted c2s listener: each probe's connection is handed to
// the test, which answers it when it wants. It is a fake on purpose: what
// these tests need is an answer that comes at a chosen moment (after a
// restart, after READY=1), which a real Prosody cannot be made to give.
type heldC2S struct {
	ln    net.Listener
	conns chan net.Conn
}

func newHeldC2S(t *testing.T) *heldC2S {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldC2S{ln: ln, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for {
			select {
			case c := <-h.conns:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return h
}

// next waits for the next probe connection.
func (h *heldC2S) next(t *testing.T, within time.Duration) net.Conn {
	t.Helper()
	select {
	case c := <-h.conns:
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(within):
		t.Fatalf("no probe connected within %s", within)
		return nil
	}
}

// answerProbe sends, on c, what Prosody sends a client of example.test: ready
// (stream features offering SASL) or not (a host-unknown stream error).
func answerProbe(t *testing.T, c net.Conn, ready bool) {
	t.Helper()
	buf := make([]byte, 1024)
	if _, err := c.Read(buf); err != nil { // the probe's stream header
		t.Fatalf("read the probe's stream header: %v", err)
	}
	head := `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.test' id='x' version='1.0'>`
	body := `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`
	if !ready {
		body = `<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`
	}
	if _, err := c.Write([]byte(head + body)); err != nil {
		t.Fatalf("answer the probe: %v", err)
	}
}

// sendReady sends READY=1 to m's NOTIFY_SOCKET from this process (the
// kernel gives the socket this process's pid, which the test made the child).
func sendReady(t *testing.T, m *Monitor) {
	t.Helper()
	c, err := net.Dial("unixgram", m.NotifySocket())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1")); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "READY=1 counted", func() error {
		if n := metricValue(t, m, "prosody_pfe_notify_messages_total", "type", "ready"); n != 1 {
			return fmt.Errorf("ready messages = %v", n)
		}
		return nil
	})
}

// TestStaleProbeDoesNotMakeARestartedChildReady: a probe that began for the
// previous child and answers after the restart says nothing about the new
// one: /readyz stays 503 until a probe of the new child answers. (Before, that
// answer made the new child ready at once; only a second probe, then kicked
// by READY=1, could correct it.)
func TestStaleProbeDoesNotMakeARestartedChildReady(t *testing.T) {
	h := newHeldC2S(t)
	m := startMonitor(t, Config{Interval: 10 * time.Second, StartupInterval: 20 * time.Millisecond, ProbeTimeout: 10 * time.Second,
		C2SAddr: h.ln.Addr().String(), Domain: "example.test"})
	m.SetStagesDone()
	m.ChildStarted(4242)
	old := h.next(t, 5*time.Second) // the first child's probe, held
	m.ChildExited(4242, 137, "SIGKILL")
	m.Restarting(1, 0)
	m.ChildStarted(4243)
	answerProbe(t, old, true)         // the old probe answers after the restart
	fresh := h.next(t, 5*time.Second) // the new child's probe: its answer was taken in
	expect(t, m, ReadyPath, 503, "starting")
	answerProbe(t, fresh, true)
	waitFor(t, m, ReadyPath, 200, "ready")
}

// notifyMonitor is a Monitor whose child is this test process (so the test
// can send its READY=1), probing h; StartupInterval is long, so a probe that
// comes at once was asked for, not the backoff's.
func notifyMonitor(t *testing.T, h *heldC2S) *Monitor {
	t.Helper()
	dir := prosodytest.Dir(t)
	uid, gid := prosodytest.IDs(t)
	m := startMonitor(t, Config{Interval: 10 * time.Second, StartupInterval: 5 * time.Second, ProbeTimeout: 10 * time.Second,
		C2SAddr: h.ln.Addr().String(), Domain: "example.test",
		UseNotify: true, NotifyPath: filepath.Join(dir, "notify.sock"), NotifyUID: uid, NotifyGID: gid})
	m.SetStagesDone()
	m.ChildStarted(os.Getpid())
	return m
}

// TestReadyDuringAnsweredProbeProbesOnce: READY=1 while the probe of this
// child runs, and that probe answers: ready, with no second probe competing
// with the module check for Prosody.
func TestReadyDuringAnsweredProbeProbesOnce(t *testing.T) {
	h := newHeldC2S(t)
	m := notifyMonitor(t, h)
	c := h.next(t, 5*time.Second)
	sendReady(t, m)
	answerProbe(t, c, true)
	waitFor(t, m, ReadyPath, 200, "ready")
	wait.Holds(t, time.Second, "no second probe after READY=1", func() error {
		select {
		case c := <-h.conns:
			_ = c.Close()
			return errors.New("a second probe connected")
		default:
			return nil
		}
	})
}

// TestReadyDuringFailingProbeProbesAgainAtOnce: READY=1 while the probe of
// this child runs, and that probe fails: the next probe runs at once, not
// after the startup backoff (5 s here).
func TestReadyDuringFailingProbeProbesAgainAtOnce(t *testing.T) {
	h := newHeldC2S(t)
	m := notifyMonitor(t, h)
	c := h.next(t, 5*time.Second)
	sendReady(t, m)
	answerProbe(t, c, false)
	answerProbe(t, h.next(t, 2*time.Second), true)
	waitFor(t, m, ReadyPath, 200, "ready")
}

// TestReadyAfterFailedProbeProbesAtOnce: READY=1 after the last probe
// failed (none running): probe at once, not after the startup backoff.
func TestReadyAfterFailedProbeProbesAtOnce(t *testing.T) {
	h := newHeldC2S(t)
	m := notifyMonitor(t, h)
	answerProbe(t, h.next(t, 5*time.Second), false)
	wait.Until(t, 10*time.Second, "the failed probe recorded", func() error {
		if p := m.Status().Probe; p == nil || p.OK {
			return fmt.Errorf("probe = %+v", p)
		}
		return nil
	})
	sendReady(t, m)
	answerProbe(t, h.next(t, 2*time.Second), true)
	waitFor(t, m, ReadyPath, 200, "ready")
}
