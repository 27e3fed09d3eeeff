package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// TestProsodyLifecycle walks one real Prosody 13 through start, readiness (c2s
// stream features and READY=1), SIGSTOP, reload, and shutdown, as the supervisor
// and the watcher would report them.
func TestProsodyLifecycle(t *testing.T) {
	dir := prosodytest.Dir(t, "data", "certs")
	port := prosodytest.FreePort(t)
	uid, gid := prosodytest.IDs(t)
	m := startMonitor(t, Config{
		Interval: 10 * time.Second, StartupInterval: 50 * time.Millisecond, ProbeTimeout: time.Second,
		C2SAddr: "127.0.0.1:" + strconv.Itoa(port), Domain: "example.test",
		UseNotify: true, NotifyPath: filepath.Join(dir, "notify.sock"), NotifyUID: uid, NotifyGID: gid,
	})
	expect(t, m, ReadyPath, 503, "starting: init stages running")
	expect(t, m, LivePath, 200, "ok: starting")
	m.StageDone("validate-env", 3*time.Millisecond, nil)
	m.SetStagesDone()
	expect(t, m, ReadyPath, 503, "waiting for the child")

	p := startProsody(t, dir, port, m.NotifySocket())
	m.ChildStarted(p.PID())
	// Prosody needs tens of milliseconds to open c2s and say READY=1; until then: 503.
	code, body, _ := get(t, m, ReadyPath)
	if code != 503 || !strings.HasPrefix(body, "starting: waiting for") {
		t.Fatalf("readyz right after start = %d %q, want 503 starting", code, body)
	}
	start := time.Now()
	waitFor(t, m, ReadyPath, 200, "ready")
	t.Logf("ready %s after ChildStarted", time.Since(start))
	if ok, detail, err := ProbeC2S(context.Background(), p.c2s, "example.test", time.Second); err != nil || !ok {
		t.Fatalf("readyz said ready but c2s probe = %v %q %v", ok, detail, err)
	}
	st := m.Status()
	if st.Probe == nil || !st.Probe.OK || !strings.Contains(st.Probe.Detail, "mechanisms") {
		t.Fatalf("status probe = %+v, want ok with mechanisms", st.Probe)
	}
	m.mu.Lock()
	notifyReady := m.in.notify.ready && m.in.notify.pid == p.PID()
	m.mu.Unlock()
	if !notifyReady {
		t.Fatal("ready without READY=1 from prosody's pid over NOTIFY_SOCKET")
	}

	t.Run("endpoints do not block while prosody is SIGSTOPped", func(t *testing.T) {
		p.Signal(t, syscall.SIGSTOP)
		m.wake() // start a probe now: it hangs on the stopped process until its 1s timeout
		var slowest time.Duration
		for range 20 {
			for _, path := range []string{LivePath, ReadyPath} {
				code, _, d := get(t, m, path)
				if code != 200 {
					t.Fatalf("%s = %d while the probe hangs, want the cached 200", path, code)
				}
				slowest = max(slowest, d)
			}
		}
		t.Logf("slowest answer while stopped: %s", slowest)
		// The bound is generous (the target is 50ms); a blocking handler would take the 1s probe timeout.
		if slowest > 250*time.Millisecond {
			t.Fatalf("slowest answer %s, want well under the 1s probe timeout", slowest)
		}
		// The hung probe is seen: not ready with a timeout, yet alive.
		waitFor(t, m, ReadyPath, 503, "timeout")
		expect(t, m, LivePath, 200, "ok")
		p.Signal(t, syscall.SIGCONT)
		waitFor(t, m, ReadyPath, 200, "ready")
	})

	t.Run("reload waits for READY=1", func(t *testing.T) {
		m.ReloadStarted()
		expect(t, m, ReadyPath, 503, "reloading")
		p.Signal(t, syscall.SIGHUP)
		m.ReloadDone("applied", 5*time.Millisecond, nil)
		waitFor(t, m, ReadyPath, 200, "ready")
		if st := m.Status(); st.LastReload == nil || st.LastReload.Outcome != "applied" {
			t.Fatalf("last reload = %+v, want applied", st.LastReload)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.WaitReady(ctx); err != nil {
			t.Fatalf("WaitReady when ready: %v", err)
		}
	})

	t.Run("503 from the first moment of Stopping", func(t *testing.T) {
		m.Stopping()
		// No polling: the very next request must see it, before the child is signalled.
		expect(t, m, ReadyPath, 503, "stopping")
		expect(t, m, LivePath, 200, "ok: stopping")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "stopping") {
			t.Fatalf("WaitReady while stopping = %v, want a stopping error", err)
		}
		p.Signal(t, syscall.SIGTERM)
		code := p.WaitExit(t)
		m.ChildExited(p.PID(), code, "")
		expect(t, m, ReadyPath, 503, "stopped")
		if code != 0 {
			t.Fatalf("prosody exit code %d after SIGTERM, want 0", code)
		}
	})
}

// TestNotReadyWhileC2SSilent: a running child whose c2s port does not answer keeps
// /readyz at 503 with the connect error (the child here is a real `sleep`).
func TestNotReadyWhileC2SSilent(t *testing.T) {
	port := prosodytest.FreePort(t)
	m := startMonitor(t, Config{StartupInterval: 20 * time.Millisecond, C2SAddr: "127.0.0.1:" + strconv.Itoa(port), Domain: "example.test"})
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	m.SetStagesDone()
	m.ChildStarted(child.Process.Pid)
	waitFor(t, m, ReadyPath, 503, "connection refused")
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		expect(t, m, ReadyPath, 503, "starting: waiting for c2s")
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHostUnknownIsNotReady: Prosody answers, but not for this domain.
func TestHostUnknownIsNotReady(t *testing.T) {
	dir := prosodytest.Dir(t, "data", "certs")
	port := prosodytest.FreePort(t)
	p := startProsody(t, dir, port, "")
	m := startMonitor(t, Config{StartupInterval: 50 * time.Millisecond, C2SAddr: p.c2s, Domain: "wrong.test"})
	m.SetStagesDone()
	m.ChildStarted(p.PID())
	waitFor(t, m, ReadyPath, 503, "stream error: host-unknown")

	ok, detail, err := ProbeC2S(context.Background(), p.c2s, "example.test", 2*time.Second)
	if err != nil || !ok {
		t.Fatalf("probe of the served domain = %v %q %v, want ready", ok, detail, err)
	}
}

func TestRestartAndGiveUp(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	m := startMonitor(t, Config{Mode: ModePlain})
	m.SetStagesDone()
	expect(t, m, ReadyPath, 503, "waiting for the child")
	m.ChildStarted(child.Process.Pid)
	expect(t, m, ReadyPath, 200, "ready")
	m.ChildExited(child.Process.Pid, 137, "SIGKILL")
	expect(t, m, ReadyPath, 503, "restarting: child exited with code 137")
	m.Restarting(1, 200*time.Millisecond)
	expect(t, m, ReadyPath, 503, "restarting: attempt 1")
	expect(t, m, LivePath, 200, "ok: restarting")
	m.ChildStarted(child.Process.Pid)
	expect(t, m, ReadyPath, 200, "ready")
	m.ChildExited(child.Process.Pid, 1, "")
	m.GaveUp(1)
	expect(t, m, LivePath, 503, "failed: supervisor gave up (exit code 1)")
	expect(t, m, ReadyPath, 503, "failed")
	if st := m.Status(); st.Child.Restarts != 1 || st.Child.LastExit == nil || st.Child.LastExit.Code != 1 {
		t.Fatalf("status child = %+v, want 1 restart and last exit code 1", st.Child)
	}
}

func TestWaitReadyBlocksUntilReady(t *testing.T) {
	m := startMonitor(t, Config{Mode: ModePlain})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- m.WaitReady(ctx) }()
	m.SetStagesDone()
	select {
	case err := <-errc:
		t.Fatalf("WaitReady returned %v before the child started", err)
	case <-time.After(50 * time.Millisecond):
	}
	m.ChildStarted(os.Getpid())
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	m.Stopping()
	if err := m.WaitReady(short); err == nil {
		t.Fatal("WaitReady returned nil while stopping")
	}
	m2 := startMonitor(t, Config{Mode: ModePlain})
	if err := m2.WaitReady(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady on an expired ctx = %v, want DeadlineExceeded", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad mode", Config{Listen: "127.0.0.1:0", Mode: "docker"}, `mode "docker" is unknown`},
		{"prosody without c2s", Config{Listen: "127.0.0.1:0"}, "needs the c2s address and the domain"},
		{"notify without path", Config{Listen: "127.0.0.1:0", Mode: ModePlain, UseNotify: true}, "notify socket path is empty"},
		{"bad listen", Config{Listen: "127.0.0.1:99999", Mode: ModePlain}, `listen for health endpoints on "127.0.0.1:99999"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// With PROSODY_HEALTH_LISTEN=off there is no HTTP server, but readiness is still
// tracked: the reload path waits on it.
func TestNoListenStillTracksReadiness(t *testing.T) {
	m, err := New(Config{Mode: ModePlain})
	if err != nil {
		t.Fatal(err)
	}
	if m.Addr() != "" {
		t.Fatalf("Addr() = %q, want empty without a listener", m.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	m.SetStagesDone()
	m.ChildStarted(os.Getpid())
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := m.WaitReady(wctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestModuleCheckDoesNotWaitForTheProbe: after READY=1 the check of the
// loaded modules runs at once, beside a c2s probe still in flight, not after
// it: /readyz waits for the slower of the two, not for both in turn. The c2s
// address is a listener that never accepts (a probe hangs there until its
// timeout, as one does on a Prosody whose loop is not running yet: the real
// one cannot be held there on demand); the admin socket is a real Prosody's.
// Readiness still needs the probe: /readyz stays 503 with the modules loaded.
func TestModuleCheckDoesNotWaitForTheProbe(t *testing.T) {
	dir := prosodytest.Dir(t, "data", "certs")
	uid, gid := prosodytest.IDs(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	const probeTimeout = 5 * time.Second
	m := startMonitor(t, Config{
		Interval: 10 * time.Second, StartupInterval: 50 * time.Millisecond, ProbeTimeout: probeTimeout,
		C2SAddr: silent.Addr().String(), Domain: "example.test",
		UseNotify: true, NotifyPath: filepath.Join(dir, "notify.sock"), NotifyUID: uid, NotifyGID: gid,
	})
	sock := filepath.Join(dir, "admin.sock")
	m.SetInfo(Info{AdminSocket: sock, Modules: []HostModules{{Host: "example.test", Modules: []string{"admin_shell", "ping"}}}})
	m.SetStagesDone()

	cfg := prosodytest.MinimalConfig(filepath.Join(dir, "data"), prosodytest.FreePort(t))
	cfg = strings.Replace(cfg, `modules_enabled = { "saslauth", "ping" }`,
		fmt.Sprintf("modules_enabled = { \"saslauth\", \"ping\", \"admin_shell\" }\nadmin_socket = %q", sock), 1)
	p := prosodytest.Start(t, prosodytest.Options{Dir: dir, Config: cfg, Env: []string{"NOTIFY_SOCKET=" + m.NotifySocket()}})
	start := time.Now()
	m.ChildStarted(p.PID()) // the probe starts now and hangs on the silent listener
	var mods *modulesJSON
	wait.Until(t, 15*time.Second, "the module check after READY=1", func() error {
		if mods = m.Status().Modules; mods == nil {
			return errors.New("no module check yet")
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("module check recorded %s after the child started (probe timeout %s)", took, probeTimeout)
	if took >= probeTimeout {
		t.Errorf("module check recorded %s after the start: it waited for the hung probe (timeout %s)", took, probeTimeout)
	}
	if mods.Error != "" || mods.Planned != 2 || mods.Missing != 0 {
		t.Errorf("module check = %+v, want both planned modules loaded", mods)
	}
	expect(t, m, ReadyPath, 503, "starting: waiting for c2s")
}
