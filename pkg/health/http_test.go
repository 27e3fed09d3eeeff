package health

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
)

func TestStatusJSON(t *testing.T) {
	m := startMonitor(t, Config{Mode: ModePlain})
	m.SetInfo(Info{Profile: "small", Environment: "production", Features: []string{"messaging/core"},
		ConfigHash: "sha256:abc", Hosts: []string{"example.test"}})
	exercise(m)
	code, body, _ := get(t, m, StatusPath)
	if code != 200 {
		t.Fatalf("/status = %d", code)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode /status: %v\n%s", err, body)
	}
	if st.State != "ready" || st.Profile != "small" || st.Environment != "production" || st.ConfigHash != "sha256:abc" ||
		len(st.Features) != 1 || len(st.Hosts) != 1 {
		t.Errorf("status summary = %+v", st)
	}
	if len(st.Stages) != 2 || st.Stages[0].Name != "render" || !st.Stages[0].OK || st.Stages[1].OK ||
		!strings.Contains(st.Stages[1].Error, "exit 1") {
		t.Errorf("stages = %+v", st.Stages)
	}
	if st.Child.PID != os.Getpid() || !st.Child.Running || st.Child.Restarts != 1 || st.Child.LastExit.Code != 143 {
		t.Errorf("child = %+v", st.Child)
	}
	if st.LastReload == nil || st.LastReload.Outcome != "applied" {
		t.Errorf("last reload = %+v", st.LastReload)
	}
	if len(st.Certs) != 1 || st.Certs[0].Host != "example.test" || st.Certs[0].NotAfter.Year() != 2030 {
		t.Errorf("certs = %+v", st.Certs)
	}
}

func TestHealthcheck(t *testing.T) {
	m := startMonitor(t, Config{Mode: ModePlain})
	base := "http://" + m.Addr()
	check := func(url string, want int, wantOut string) {
		t.Helper()
		var out bytes.Buffer
		if got := Healthcheck(context.Background(), url, 2*time.Second, &out); got != want || !strings.Contains(out.String(), wantOut) {
			t.Errorf("Healthcheck(%s) = %d %q, want %d containing %q", url, got, out.String(), want, wantOut)
		}
	}
	check(base, 1, "unhealthy: 503: starting: init stages running")
	check(base+LivePath, 0, "healthy: ok: starting")
	m.SetStagesDone()
	m.ChildStarted(os.Getpid())
	check(base, 0, "healthy: ready")
	check(base+ReadyPath, 0, "healthy: ready")
	m.Stopping()
	check(base+"/", 1, "unhealthy: 503: stopping")
	m.GaveUp(70)
	check(base+LivePath, 1, "unhealthy: 503: failed: supervisor gave up (exit code 70)")
	check("http://127.0.0.1:"+strconv.Itoa(prosodytest.FreePort(t)), 1, "connection refused")
	check("ftp://x", 1, "bad health URL")

	for listen, want := range map[string]string{":5282": "http://127.0.0.1:5282/readyz", "[::]:1": "http://127.0.0.1:1/readyz",
		"10.0.0.1:2": "http://10.0.0.1:2/readyz"} {
		if got, err := EndpointURL(listen, ReadyPath); err != nil || got != want {
			t.Errorf("EndpointURL(%q) = %q %v, want %q", listen, got, err, want)
		}
	}
	if _, err := EndpointURL("5282", ReadyPath); err == nil || !strings.Contains(err.Error(), `"5282"`) {
		t.Errorf("EndpointURL(5282) error = %v, want one naming the address", err)
	}
}

func TestDerive(t *testing.T) {
	running := inputs{stagesDone: true, childPID: 7, childRunning: true}
	withProbe := running
	withProbe.probeOK = true
	ready := withProbe
	ready.notify = notifyState{pid: 7, ready: true}
	staleNotify := withProbe
	staleNotify.notify = notifyState{pid: 6, ready: true}
	reloading := ready
	reloading.notify.reloading, reloading.notify.ready = true, false
	for _, tc := range []struct {
		name      string
		in        inputs
		plain     bool
		notify    bool
		want      State
		reasonHas string
	}{
		{"nothing yet", inputs{}, false, false, StateStarting, "init stages"},
		{"plain running", running, true, false, StateReady, "ready"},
		{"plain with notify, no READY=1", running, true, true, StateStarting, "READY=1"},
		{"plain with notify, READY=1 (no probe in plain mode)", func() inputs { i := running; i.notify = notifyState{pid: 7, ready: true}; return i }(), true, true, StateReady, "ready"},
		{"plain with notify, READY=1 from an old child", func() inputs { i := running; i.notify = notifyState{pid: 6, ready: true}; return i }(), true, true, StateStarting, "READY=1"},
		{"probe pending", running, false, false, StateStarting, "not probed yet"},
		{"probe ok without notify", withProbe, false, false, StateReady, "ready"},
		{"probe ok, no READY=1", withProbe, false, true, StateStarting, "READY=1"},
		{"READY=1 from an old child", staleNotify, false, true, StateStarting, "READY=1"},
		{"ready", ready, false, true, StateReady, "ready"},
		{"RELOADING=1", reloading, false, true, StateReloading, "reloading"},
		{"stopping wins", func() inputs { i := ready; i.stopping = true; return i }(), false, true, StateStopping, "stopping"},
		{"STOPPING=1", func() inputs { i := ready; i.notify.stopping = true; return i }(), false, true, StateStopping, "STOPPING=1"},
		{"stopped", inputs{stopping: true, exited: true}, false, false, StateStopped, "stopped"},
		{"gave up wins", inputs{gaveUp: true, gaveUpCode: 3, stopping: true}, false, false, StateFailed, "exit code 3"},
		{"exited", inputs{stagesDone: true, exited: true, lastExitCode: 139}, false, false, StateRestarting, "code 139"},
		{"database down", func() inputs { i := ready; i.dbDown, i.dbDetail = true, "connection refused"; return i }(), false, true, StateDegraded, "database unreachable since"},
		{"probe failing wins over database", func() inputs { i := running; i.dbDown = true; return i }(), false, false, StateStarting, "waiting for c2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := derive(tc.in, tc.plain, tc.notify)
			if got.State != tc.want || !strings.Contains(got.Reason, tc.reasonHas) {
				t.Errorf("derive = %v %q, want %v containing %q", got.State, got.Reason, tc.want, tc.reasonHas)
			}
		})
	}
}

// BenchmarkReadyz measures /readyz over loopback with parallel keep-alive clients
// against the real handler and server (plain mode, ready, so answers are 200).
func BenchmarkReadyz(b *testing.B) {
	m, err := New(Config{Listen: "127.0.0.1:0", Mode: ModePlain})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	m.SetStagesDone()
	m.ChildStarted(os.Getpid())
	url := "http://" + m.Addr() + ReadyPath
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	defer func() {
		// The shutdown is not the endpoint's cost: untimed, and without idle
		// keep-alive connections for it to wait on (it polls them for up to
		// 2 s, which made a run of 100 requests report 20 ms each).
		b.StopTimer()
		client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	var failures atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64)
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				failures.Add(1)
				continue
			}
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					break
				}
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
}

// discardWriter is the least a ResponseWriter can be: the handler benchmarks
// count the handler's own allocations, not a recorder's.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// TestProbeHandlersDoNotAllocate: /readyz and /livez answer from bodies
// rendered when the state changed, whatever the state, so a crowd of probes
// makes no garbage (and no GC work) in the entrypoint.
func TestProbeHandlersDoNotAllocate(t *testing.T) {
	m, err := New(Config{Mode: ModePlain})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		do   func()
	}{
		{"starting", func() {}},
		{"ready", func() { m.SetStagesDone(); m.ChildStarted(os.Getpid()) }},
		{"stopping", func() { m.Stopping() }},
	} {
		step.do()
		for _, path := range []string{ReadyPath, LivePath} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			w := &discardWriter{h: http.Header{}}
			if n := testing.AllocsPerRun(100, func() { clear(w.h); m.handler.ServeHTTP(w, req) }); n != 0 {
				t.Errorf("%s while %s: %.1f allocations per request, want 0", path, step.name, n)
			}
		}
	}
}

// BenchmarkProbeHandlers is the work of /readyz and /livez per request,
// without the network: it must not allocate (a probe endpoint under a crowd
// of clients should not make garbage for the GC to chase).
func BenchmarkProbeHandlers(b *testing.B) {
	m, err := New(Config{Mode: ModePlain}) // no listener: the handler alone
	if err != nil {
		b.Fatal(err)
	}
	m.SetStagesDone()
	m.ChildStarted(os.Getpid())
	for _, path := range []string{ReadyPath, LivePath} {
		b.Run(strings.TrimPrefix(path, "/"), func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				m.handler.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("%s: %d", path, w.code)
				}
			}
		})
	}
}
