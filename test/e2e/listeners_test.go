package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Issue 23 through the entrypoint binary: the entrypoint holds Prosody's
// listening sockets (PROSODY_SOCKET_ACTIVATION), so a client that connects
// while Prosody restarts is queued and served by the next Prosody, never
// refused.

// attempt is one connection attempt of a client loop.
type attempt struct {
	start, end time.Time
	refused    bool  // ECONNREFUSED: what clients see when nobody holds the port
	err        error // anything else short of stream features
}

// clientLoop opens a c2s stream to addr every 20 ms until stop is closed, each
// attempt in its own goroutine (one made while Prosody is down waits for the
// next one), and returns every attempt once all have ended.
func clientLoop(addr, domain string, stop <-chan struct{}) []attempt {
	var (
		mu  sync.Mutex
		out []attempt
		wg  sync.WaitGroup
	)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			wg.Wait()
			return out
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := attempt{start: time.Now()}
			a.err = streamFeatures(addr, domain, 30*time.Second)
			a.end = time.Now()
			a.refused = errors.Is(a.err, syscall.ECONNREFUSED)
			mu.Lock()
			out = append(out, a)
			mu.Unlock()
		}()
	}
}

// streamFeatures opens an XMPP client stream on addr and reads until the
// server's </stream:features>, within d.
func streamFeatures(addr, domain string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", domain); err != nil {
		return err
	}
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), "</stream:features>") {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("no stream features (read %q): %w", got, err)
		}
	}
	return nil
}

// listenerStatus is /status's "listeners".
type listenerStatus struct {
	SocketActivation bool `json:"socket_activation"`
	Sockets          []struct {
		Service   string `json:"service"`
		Address   string `json:"address"`
		Inherited bool   `json:"inherited"`
	} `json:"sockets"`
}

func (s *Server) listeners() listenerStatus {
	s.t.Helper()
	code, body, err := s.Get("/status")
	if err != nil || code != 200 {
		s.t.Fatalf("GET /status: %d %v", code, err)
	}
	var st struct {
		Listeners *listenerStatus `json:"listeners"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Listeners == nil {
		s.t.Fatalf("/status has no listeners section (%v):\n%s", err, body)
	}
	return *st.Listeners
}

func (l listenerStatus) has(service, addr string) bool {
	for _, so := range l.Sockets {
		if so.Service == service && so.Address == addr && so.Inherited {
			return true
		}
	}
	return false
}

// prosodyEnv is the environment of the running Prosody.
func prosodyEnv(t *testing.T, s *Server) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.ProsodyPID()), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\x00", "\n")
}

// killServer starts a server that restarts a killed Prosody after 50 ms,
// every time (the window is too short to count restarts against a limit).
func killServer(t *testing.T, env map[string]string) *Server {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["PROSODY_RESTART_BACKOFF"] = "50ms"
	env["PROSODY_RESTART_WINDOW"] = "1ms"
	s := NewServer(t, Options{Env: env}).Start()
	s.WaitReady(30 * time.Second)
	return s
}

// kill9 kills Prosody with SIGKILL and waits until a new one is ready.
func kill9(t *testing.T, s *Server) {
	t.Helper()
	pid := s.ProsodyPID()
	if pid == 0 {
		t.Fatal("no prosody running")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.WaitFor(30*time.Second, "a new prosody, ready", func() bool {
		code, _, err := s.Get("/readyz")
		if err != nil || code != 200 {
			return false
		}
		p := s.ProsodyPID()
		return p != 0 && p != pid
	})
}

// 10 kill -9s of Prosody while a client connects every 20 ms: no attempt is
// refused, every one gets stream features (except a stream the killed
// Prosody had accepted already), and some were made while no Prosody ran
// (queued by the kernel on the entrypoint's socket).
func TestSocketActivationKill9RefusesNothing(t *testing.T) {
	t.Parallel()
	s := killServer(t, nil)
	c2s := "127.0.0.1:" + strconv.Itoa(s.C2S)
	l := s.listeners()
	if !l.SocketActivation || !l.has("c2s", c2s) || !l.has("s2s", "127.0.0.1:"+strconv.Itoa(s.S2S)) {
		t.Fatalf("/status listeners = %+v, want c2s and s2s on 127.0.0.1 inherited", l)
	}
	if env := prosodyEnv(t, s); !strings.Contains(env, "\nLISTEN_FDS=") || !strings.Contains(env, "LISTEN_FDNAMES=c2s:") {
		t.Fatalf("prosody's environment has no LISTEN_FDS/LISTEN_FDNAMES:\n%s", env)
	}

	stop := make(chan struct{})
	done := make(chan []attempt)
	go func() { done <- clientLoop(c2s, s.Domain, stop) }()
	var downs [][2]time.Time // from each kill to the new Prosody's readiness
	for range 10 {
		from := time.Now()
		kill9(t, s)
		downs = append(downs, [2]time.Time{from, time.Now()})
	}
	close(stop)
	attempts := <-done

	// A stream the killed Prosody had already accepted dies with it: that
	// is the crash, not a refusal, and no listener can save it.
	inFlight := func(a attempt) bool {
		for _, d := range downs {
			if a.start.Before(d[0].Add(10*time.Millisecond)) && a.end.After(d[0]) {
				return true
			}
		}
		return false
	}
	var refused, failed, lost, queued int
	for _, a := range attempts {
		switch {
		case a.refused:
			refused++
		case a.err != nil && inFlight(a):
			lost++
		case a.err != nil:
			failed++
			t.Errorf("attempt at %s: %v", a.start.Format(time.StampMilli), a.err)
		}
		for _, d := range downs {
			if a.start.After(d[0]) && a.start.Before(d[1]) && a.end.Sub(a.start) > 50*time.Millisecond {
				queued++
				break
			}
		}
	}
	t.Logf("%d attempts through 10 kill -9s: %d refused, %d failed, %d in flight when prosody was killed, %d made while it restarted",
		len(attempts), refused, failed, lost, queued)
	if refused != 0 {
		t.Errorf("%d connection attempts refused during restarts, want 0", refused)
	}
	if queued == 0 {
		t.Error("no attempt was made while prosody was down: the test proved nothing")
	}
	if v, _ := metric(t, s, "prosody_pfe_child_starts_total", `listeners="inherited"`); v != 11 {
		t.Errorf("prosody_pfe_child_starts_total{listeners=\"inherited\"} = %v, want 11", v)
	}
	if _, ok := metric(t, s, "prosody_pfe_listener_queued", `service="c2s"`); !ok {
		t.Error("no prosody_pfe_listener_queued for c2s")
	}
}

// PROSODY_SOCKET_ACTIVATION=false: Prosody binds its own sockets (no
// LISTEN_FDS), /status says so, the starts count as "bound", and a kill -9
// refuses the clients that connect meanwhile, as before.
func TestSocketActivationOff(t *testing.T) {
	t.Parallel()
	s := killServer(t, map[string]string{"PROSODY_SOCKET_ACTIVATION": "false"})
	if l := s.listeners(); l.SocketActivation || len(l.Sockets) != 0 {
		t.Fatalf("/status listeners = %+v, want socket_activation false and none held", l)
	}
	if env := prosodyEnv(t, s); strings.Contains(env, "LISTEN_FDS=") {
		t.Fatalf("prosody got LISTEN_FDS with PROSODY_SOCKET_ACTIVATION=false:\n%s", env)
	}
	stop := make(chan struct{})
	done := make(chan []attempt)
	go func() { done <- clientLoop("127.0.0.1:"+strconv.Itoa(s.C2S), s.Domain, stop) }()
	kill9(t, s)
	close(stop)
	refused := 0
	for _, a := range <-done {
		if a.refused {
			refused++
		}
	}
	if refused == 0 {
		t.Error("no attempt refused while prosody restarted on its own sockets: is the switch ignored?")
	}
	if v, _ := metric(t, s, "prosody_pfe_child_starts_total", `listeners="bound"`); v != 2 {
		t.Errorf("prosody_pfe_child_starts_total{listeners=\"bound\"} = %v, want 2", v)
	}
}

// A port in use is found before Prosody starts: exit 78, naming the port's
// variable, with socket activation on and off.
func TestSocketActivationPortInUse(t *testing.T) {
	t.Parallel()
	for _, on := range []string{"true", "false"} {
		t.Run("activation="+on, func(t *testing.T) {
			t.Parallel()
			s := NewServer(t, Options{Env: map[string]string{"PROSODY_SOCKET_ACTIVATION": on}})
			busy, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.S2S))
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			s.Start()
			code, ok := s.Wait(60 * time.Second)
			if !ok || code != 78 {
				t.Fatalf("exit %d (exited: %v), want 78\n%s", code, ok, tail(s.Stderr(), 3000))
			}
			if !strings.Contains(s.Stderr(), "PROSODY_S2S_PORT") || !strings.Contains(s.Stderr(), "address already in use") {
				t.Errorf("the error does not name PROSODY_S2S_PORT and the cause:\n%s", tail(s.Stderr(), 3000))
			}
		})
	}
}

// A reload that moves c2s to another port restarts Prosody on the new
// socket (bound before the restart) and closes the old one after it; a
// move to a port in use is refused and Prosody keeps its port.
func TestSocketActivationReloadMovesPort(t *testing.T) {
	t.Parallel()
	s := liveServer(t, layer{}, nil)
	oldAddr := "127.0.0.1:" + strconv.Itoa(s.C2S)
	custom := filepath.Join(s.Dir, "custom")

	// Refused: the new port is taken.
	busy, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	busyPort := busy.Addr().(*net.TCPAddr).Port
	pid := s.ProsodyPID()
	before := reloads(t, s, "")
	writeAtomic(t, profilePath(custom), profileJSON(t, nil, layer{Settings: map[string]any{"c2s_ports": []int{busyPort}}}))
	st := waitOutcome(t, s, before, "refused")
	busy.Close()
	if !strings.Contains(st.LastReload.Error, "address already in use") {
		t.Errorf("refusal = %q, want the port in use", st.LastReload.Error)
	}
	if got := s.ProsodyPID(); got != pid {
		t.Fatalf("prosody restarted (pid %d, was %d) for a refused port change", got, pid)
	}
	if err := streamFeatures(oldAddr, s.Domain, 5*time.Second); err != nil {
		t.Fatalf("old c2s port after a refused change: %v", err)
	}

	// Restarted onto the new port.
	newPort := freePort(t)
	newAddr := "127.0.0.1:" + strconv.Itoa(newPort)
	before = reloads(t, s, "")
	writeAtomic(t, profilePath(custom), profileJSON(t, nil, layer{Settings: map[string]any{"c2s_ports": []int{newPort}}}))
	waitOutcome(t, s, before, "restarted")
	s.WaitFor(30*time.Second, "the new c2s port to serve", func() bool { return streamFeatures(newAddr, s.Domain, 2*time.Second) == nil })
	if _, err := net.DialTimeout("tcp", oldAddr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("old c2s port %s after the move: %v, want connection refused (closed)", oldAddr, err)
	}
	l := s.listeners()
	if !l.has("c2s", newAddr) || l.has("c2s", oldAddr) {
		t.Errorf("/status listeners = %+v, want c2s on %s only", l, newAddr)
	}
}

// A c2s port below 1024 serves clients while Prosody runs as the prosody
// user without any capability: root bound it (on a machine where
// unprivileged users may not bind it, which the test checks first).
func TestSocketActivationPrivilegedPort(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil || strings.TrimSpace(string(b)) == "0" {
		t.Fatalf("this test needs ports below 1024 to be privileged (ip_unprivileged_port_start %q, %v)", b, err)
	}
	port := 0
	for p := 1023; p > 900 && port == 0; p-- {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			port = p
		}
	}
	if port == 0 {
		t.Fatal("no free port between 901 and 1023 on 127.0.0.1")
	}
	s := NewServer(t, Options{Env: map[string]string{"PROSODY_C2S_PORT": strconv.Itoa(port)}})
	s.C2S = port
	s.Start().WaitReady(30 * time.Second)
	if err := streamFeatures("127.0.0.1:"+strconv.Itoa(port), s.Domain, 5*time.Second); err != nil {
		t.Fatalf("c2s on port %d: %v", port, err)
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.ProsodyPID()), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "Uid:" && f[1] == "0" || f[0] == "CapEff:" && strings.Trim(f[1], "0") != "") {
			t.Errorf("prosody is privileged: %q", line)
		}
	}
}
