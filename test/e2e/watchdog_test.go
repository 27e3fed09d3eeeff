package e2e

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A wedged Prosody (SIGSTOP: the process exists, c2s accepts connections in
// the kernel, nothing answers) used to keep /livez at 200 forever. With
// PROSODY_WATCHDOG_TIMEOUT the entrypoint restarts it: a new Prosody serves,
// a real client logs in, and prosody_pfe_watchdog_restarts_total counts it.
func TestWatchdogRestartsWedgedProsody(t *testing.T) {
	t.Parallel()
	const password = "wedge-pass-1"
	env := withAccounts(map[string]string{"PROSODY_WATCHDOG_TIMEOUT": "3s", "PROSODY_HEALTH_INTERVAL": "1s"}, password, "admin@localhost")
	s := NewServer(t, Options{Env: env}).Start()
	s.WaitReady(20 * time.Second)
	waitAccounts(s, 1)
	if v, ok := metric(t, s, "prosody_pfe_watchdog_restarts_total"); !ok || v != 0 {
		t.Fatalf("prosody_pfe_watchdog_restarts_total before the wedge = %v (present %v), want 0", v, ok)
	}
	old := s.ProsodyPID()
	if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(old, syscall.SIGCONT) // a no-op once it is gone
	stopped := time.Now()
	sawWedged := false
	s.WaitFor(60*time.Second, "a new prosody ready after the wedge", func() bool {
		if code, body, err := s.Get("/livez"); err == nil && code == 503 && strings.Contains(body, "wedged") {
			sawWedged = true
		}
		if code, _, err := s.Get("/readyz"); err != nil || code != 200 {
			return false
		}
		st := s.Status()
		return st.Child.Running && st.Child.PID != 0 && st.Child.PID != old
	})
	t.Logf("healed %s after SIGSTOP (watchdog timeout 3s); /livez said wedged: %v", time.Since(stopped).Round(time.Millisecond), sawWedged)
	if err := syscall.Kill(old, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the wedged prosody %d still exists (kill 0: %v)", old, err)
	}
	if v, _ := metric(t, s, "prosody_pfe_watchdog_restarts_total"); v != 1 {
		t.Errorf("prosody_pfe_watchdog_restarts_total = %v, want 1", v)
	}
	if !s.Logged("watchdog: prosody is wedged, restarting it") {
		t.Error("the entrypoint did not log why it restarted prosody")
	}
	// SIGCONT after SIGTERM lets the stopped process shut down by itself,
	// well before the 10s stop timeout would SIGKILL it.
	var raw struct {
		Child struct {
			LastExit *struct {
				PID  int `json:"pid"`
				Code int `json:"code"`
			} `json:"last_exit"`
		} `json:"child"`
	}
	_, body, err := s.Get("/status")
	if err != nil || json.Unmarshal([]byte(body), &raw) != nil || raw.Child.LastExit == nil || raw.Child.LastExit.PID != old {
		t.Fatalf("/status last_exit: %v %s", err, body)
	}
	if raw.Child.LastExit.Code == 137 {
		t.Errorf("the wedged prosody was SIGKILLed (code 137), want a graceful stop")
	}
	if code, body, _ := s.Get("/livez"); code != 200 {
		t.Errorf("/livez after the restart = %d %q, want 200", code, body)
	}
	res := clientScript(t, 30*time.Second, "--port", strconv.Itoa(s.C2S), "--ca", selfSignedCA(s), "login", "admin@localhost", password)
	if len(res) != 1 || res[0]["ok"] != true {
		t.Fatalf("slixmpp login after the watchdog restart = %v, want ok", res)
	}
}

// Prosody on PostgreSQL storage whose database port is closed answers c2s but
// cannot log anyone in: /readyz says so (503 "degraded: database
// unreachable"), /status names the address and since when, /livez stays 200
// (restarting Prosody would not help) and the watchdog leaves it alone.
func TestDatabaseUnreachableNotReady(t *testing.T) {
	t.Parallel()
	dbPort := freePort(t) // nothing listens there: the fault itself
	s := NewServer(t, Options{Env: map[string]string{
		"PROSODY_STORAGE": "postgres", "PROSODY_DB_HOST": "127.0.0.1", "PROSODY_DB_PORT": strconv.Itoa(dbPort),
		"PROSODY_DB_PASSWORD": "db-pass-unused", "PROSODY_HEALTH_INTERVAL": "1s", "PROSODY_WATCHDOG_TIMEOUT": "1s",
	}}).Start()
	var body string
	s.WaitFor(30*time.Second, "/readyz 503 degraded", func() bool {
		var code int
		var err error
		code, body, err = s.Get("/readyz")
		return err == nil && code == 503 && strings.HasPrefix(body, "degraded: database unreachable since")
	})
	if !c2sAnswers(s) {
		t.Errorf("/readyz %q while nothing answers c2s", body)
	}
	_, raw, err := s.Get("/status")
	var st struct {
		State    string `json:"state"`
		Database *struct {
			Addr      string  `json:"addr"`
			Reachable bool    `json:"reachable"`
			Since     *string `json:"unreachable_since"`
		} `json:"database"`
	}
	if err != nil || json.Unmarshal([]byte(raw), &st) != nil || st.State != "degraded" || st.Database == nil ||
		st.Database.Reachable || st.Database.Addr != "127.0.0.1:"+strconv.Itoa(dbPort) || st.Database.Since == nil {
		t.Errorf("/status = %v %s; want degraded with the database unreachable since a time", err, raw)
	}
	if code, body, _ := s.Get("/livez"); code != 200 {
		t.Errorf("/livez = %d %q, want 200: a restart cannot bring the database back", code, body)
	}
	if v, _ := metric(t, s, "prosody_pfe_database_up"); v != 0 {
		t.Errorf("prosody_pfe_database_up = %v, want 0", v)
	}
	if v, _ := metric(t, s, "prosody_pfe_watchdog_restarts_total"); v != 0 {
		t.Errorf("prosody_pfe_watchdog_restarts_total = %v, want 0: the database is not Prosody's wedge", v)
	}
}
