package health

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
	"github.com/prosody-pfe/prosody-pfe/pkg/sdnotify"
)

const wdTimeout = time.Minute

// newProsodyMonitor is a Monitor in ModeProsody that is never Run: the tests
// feed it the supervisor's events and probe results themselves.
func newProsodyMonitor(t *testing.T, cfg Config) *Monitor {
	t.Helper()
	cfg.Mode, cfg.C2SAddr, cfg.Domain = ModeProsody, "127.0.0.1:1", "example.test"
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// probes records n probe results, each begun at start.
func probes(m *Monitor, ok bool, n int, start time.Time) {
	fails := 0
	m.mu.Lock()
	gen := m.in.childGen
	m.mu.Unlock()
	for range n {
		fails, _ = m.probeDone(gen, ok, map[bool]string{true: "features: starttls", false: "read stream: timeout"}[ok], start, 2*time.Second, fails)
	}
}

// due asks the watchdog's decision at a moment far past every timeout.
func due(m *Monitor) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	fire, _ := watchdogDue(m.in, time.Now().Add(100*wdTimeout), wdTimeout)
	return fire
}

// The watchdog never fires while Prosody is not supposed to answer: before
// its first ready (start-up), during a reload (ours or its RELOADING=1),
// during a restart backoff or a stop; and it fires once Prosody, having been
// ready, fails its probe for the timeout.
func TestWatchdogQuietOutsideServing(t *testing.T) {
	long := time.Now().Add(-10 * wdTimeout) // failures that began long ago
	m := newProsodyMonitor(t, Config{})
	m.SetStagesDone()
	m.ChildStarted(4242)
	probes(m, false, 10, long)
	if due(m) {
		t.Fatal("fired during start-up: the child was never ready")
	}

	probes(m, true, 1, time.Now())
	if m.Readiness().State != StateReady {
		t.Fatalf("state %v, want ready", m.Readiness())
	}
	m.ReloadStarted()
	probes(m, false, 10, long)
	if due(m) {
		t.Fatal("fired during a reload")
	}
	m.ReloadDone("applied", time.Second, nil)
	m.mu.Lock()
	fire, wait := watchdogDue(m.in, time.Now(), wdTimeout)
	m.mu.Unlock()
	if fire || wait < wdTimeout-time.Second {
		t.Fatalf("right after a reload: fire %v, wait %s; want the clock to start at the reload's end", fire, wait)
	}
	if !due(m) {
		t.Fatal("did not fire: failing for the timeout after the reload ended")
	}

	m.onNotify(sdnotify.Message{PID: 4242, Reloading: true})
	if due(m) {
		t.Fatal("fired while prosody said RELOADING=1")
	}
	m.onNotify(sdnotify.Message{PID: 4242, Ready: true})

	m.ChildExited(4242, 1, "")
	m.Restarting(1, time.Minute)
	probes(m, false, 10, long)
	if due(m) {
		t.Fatal("fired during a restart backoff")
	}
	m.ChildStarted(4343)
	probes(m, false, 10, long)
	if due(m) {
		t.Fatal("fired during the new child's start-up")
	}
	probes(m, true, 1, time.Now())
	probes(m, false, 3, long)
	if !due(m) {
		t.Fatal("did not fire for the new child once it had been ready")
	}
	m.Stopping()
	if due(m) {
		t.Fatal("fired during a stop")
	}
}

// One failed probe does not start anything: readiness must have dropped
// (FailureThreshold failures in a row), and a passing probe stops the clock.
func TestWatchdogNeedsReadinessToDrop(t *testing.T) {
	long := time.Now().Add(-10 * wdTimeout)
	m := newProsodyMonitor(t, Config{})
	m.SetStagesDone()
	m.ChildStarted(4242)
	probes(m, true, 1, time.Now())
	gen := m.in.childGen
	fails, _ := m.probeDone(gen, false, "read stream: timeout", long, 2*time.Second, 0)
	fails, _ = m.probeDone(gen, false, "read stream: timeout", long, 2*time.Second, fails)
	if due(m) {
		t.Fatal("fired after 2 failed probes while still ready")
	}
	m.probeDone(gen, false, "read stream: timeout", long, 2*time.Second, fails)
	if !due(m) {
		t.Fatal("did not fire after 3 failed probes for the timeout")
	}
	probes(m, true, 1, time.Now())
	if due(m) {
		t.Fatal("fired after a passing probe")
	}
}

// RunWatchdog restarts the wedged child (by pid), once, counts it, and /livez
// says so until that child is gone. The restart callback stands in for
// supervise.Supervisor.RestartChild (tested in pkg/supervise; the whole path
// with real Prosody in test/e2e TestWatchdogRestartsWedgedProsody): it only
// records the call here.
func TestRunWatchdogRestartsWedgedChild(t *testing.T) {
	const timeout = 300 * time.Millisecond
	m := newProsodyMonitor(t, Config{WatchdogTimeout: timeout})
	var mu sync.Mutex
	var calls []int
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- m.RunWatchdog(ctx, func(pid int) error {
			mu.Lock()
			calls = append(calls, pid)
			mu.Unlock()
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunWatchdog: %v", err)
		}
	}()
	live := func() (int, string) {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, LivePath, nil))
		return rec.Code, rec.Body.String()
	}
	m.SetStagesDone()
	m.ChildStarted(4242)
	probes(m, true, 1, time.Now())
	start := time.Now()
	probes(m, false, 3, start)
	wait.Until(t, 10*time.Second, "the watchdog's restart", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(calls) == 0 {
			return errors.New("not called yet")
		}
		return nil
	})
	if d := time.Since(start); d < timeout {
		t.Errorf("fired %s after the first failed probe, before the %s timeout", d, timeout)
	}
	if code, body := live(); code != 503 || !strings.Contains(body, "wedged: prosody (pid 4242)") {
		t.Errorf("/livez while wedged = %d %q, want 503 naming the wedge", code, body)
	}
	if v := metricValue(t, m, "prosody_pfe_watchdog_restarts_total"); v != 1 {
		t.Errorf("prosody_pfe_watchdog_restarts_total = %v, want 1", v)
	}
	st := m.Status()
	if st.Watchdog == nil || st.Watchdog.Restarts != 1 || st.Watchdog.Last == nil || st.Watchdog.Last.PID != 4242 {
		t.Errorf("/status watchdog = %+v, want 1 restart of pid 4242", st.Watchdog)
	}
	m.ChildExited(4242, 143, "SIGTERM")
	if code, _ := live(); code != 200 {
		t.Errorf("/livez once the wedged child is gone = %d, want 200", code)
	}
	m.ChildStarted(4343)
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || calls[0] != 4242 {
		t.Errorf("restart calls %v, want one for pid 4242", calls)
	}
}
