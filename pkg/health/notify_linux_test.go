package health

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// TestNotifyOnlyFromTheChild: with real Prosody 13 ready, local users try to
// spoof its notifications with the real sd_notify client (systemd-notify,
// --no-block: one datagram each, no BARRIER=1).
// nobody cannot reach the socket at all; the prosody user can, from a process
// that is not the child, and is ignored: /readyz stays 200, the datagrams
// are counted as dropped, and a reload afterwards still ends ready. (Before,
// one STOPPING=1 from anyone left /readyz at 503 for good and made every
// reload wait for a READY=1 that never came.)
func TestNotifyOnlyFromTheChild(t *testing.T) {
	dir := prosodytest.Dir(t, "data", "certs")
	port := prosodytest.FreePort(t)
	uid, gid := prosodytest.IDs(t)
	m := startMonitor(t, Config{
		Interval: 10 * time.Second, StartupInterval: 50 * time.Millisecond, ProbeTimeout: time.Second,
		C2SAddr: "127.0.0.1:" + strconv.Itoa(port), Domain: "example.test",
		UseNotify: true, NotifyPath: filepath.Join(dir, "notify.sock"), NotifyUID: uid, NotifyGID: gid,
	})
	m.SetStagesDone()
	p := startProsody(t, dir, port, m.NotifySocket())
	m.ChildStarted(p.PID())
	waitFor(t, m, ReadyPath, 200, "ready")

	env := []string{"NOTIFY_SOCKET=" + m.NotifySocket()}
	out, err := prosodytest.As(t, 65534, 65534, env, "systemd-notify", "STOPPING=1")
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("systemd-notify STOPPING=1 as nobody: %v %q, want permission denied", err, out)
	}
	for _, msg := range []string{"STOPPING=1", "READY=1"} {
		if out, err := prosodytest.As(t, uid, gid, env, "systemd-notify", "--no-block", msg); err != nil {
			t.Fatalf("systemd-notify %s as prosody: %v\n%s", msg, err, out)
		}
	}
	wait.Holds(t, time.Second, "/readyz 200 after the spoofed STOPPING=1", func() error {
		if code, body, _ := get(t, m, ReadyPath); code != 200 {
			return fmt.Errorf("/readyz = %d %q", code, body)
		}
		return nil
	})
	wait.Until(t, 10*time.Second, "both datagrams of the prosody user dropped", func() error {
		if n := metricValue(t, m, "prosody_pfe_notify_dropped_total"); n != 2 {
			return fmt.Errorf("notify_dropped_total = %v", n)
		}
		return nil
	})
	if got := metricValue(t, m, "prosody_pfe_notify_messages_total", "type", "stopping"); got > 0 {
		t.Errorf("stopping messages counted as the child's: %v", got)
	}

	// A reload still goes through Prosody's own RELOADING=1 and READY=1.
	m.ReloadStarted()
	p.Signal(t, syscall.SIGHUP)
	m.ReloadDone("applied", time.Millisecond, nil)
	waitFor(t, m, ReadyPath, 200, "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady after the reload: %v", err)
	}
	// ReloadDone may make it ready before Prosody's RELOADING=1 arrives.
	wait.Until(t, 10*time.Second, "prosody's RELOADING=1 counted", func() error {
		if got := metricValue(t, m, "prosody_pfe_notify_messages_total", "type", "reloading"); got != 1 {
			return fmt.Errorf("reloading messages from prosody = %v, want 1", got)
		}
		return nil
	})
}
