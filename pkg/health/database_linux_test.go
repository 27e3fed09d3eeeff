package health

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
)

// A real Prosody that answers c2s while the database it should store accounts
// in refuses connections is not ready: /readyz says "degraded: database
// unreachable", /status says since when, and both recover when the database
// port accepts connections again. The database is a closed port on loopback,
// the fault itself; a plain listener then stands in for PostgreSQL coming
// back (the check is a TCP connect).
func TestDatabaseUnreachableIsDegraded(t *testing.T) {
	dir := prosodytest.Dir(t, "data", "certs")
	p := startProsody(t, dir, prosodytest.FreePort(t), "")
	dbPort := prosodytest.FreePort(t)
	dbAddr := "127.0.0.1:" + strconv.Itoa(dbPort)
	m := startMonitor(t, Config{StartupInterval: 50 * time.Millisecond, ProbeTimeout: time.Second,
		C2SAddr: p.c2s, Domain: "example.test", DBNetwork: "tcp", DBAddr: dbAddr})
	m.SetStagesDone()
	m.ChildStarted(p.PID())
	body := waitFor(t, m, ReadyPath, 503, "degraded: database unreachable since")
	if !strings.Contains(body, "connection refused") || strings.Contains(body, dbAddr) {
		t.Errorf("/readyz = %q, want the cause without the database address (it answers everyone)", body)
	}
	expect(t, m, LivePath, 200, "ok: degraded")
	_, raw, _ := get(t, m, StatusPath)
	var st Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("decode /status: %v\n%s", err, raw)
	}
	if st.State != "degraded" || st.Database == nil || st.Database.Reachable || st.Database.Addr != dbAddr || st.Database.Since == nil ||
		st.Probe == nil || !st.Probe.OK {
		t.Errorf("/status = state %q database %+v probe %+v; want degraded, unreachable since a time, c2s probe ok", st.State, st.Database, st.Probe)
	}
	if v := metricValue(t, m, "prosody_pfe_database_up"); v != 0 {
		t.Errorf("prosody_pfe_database_up = %v, want 0", v)
	}
	if !m.Readiness().Answers() {
		t.Error("degraded does not count as answering: reloads and signals would wait for the database")
	}

	ln, err := net.Listen("tcp", dbAddr)
	if err != nil {
		t.Fatalf("listen on the database port: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	waitFor(t, m, ReadyPath, 200, "ready")
	if v := metricValue(t, m, "prosody_pfe_database_up"); v != 1 {
		t.Errorf("prosody_pfe_database_up = %v, want 1", v)
	}
	if st := m.Status(); st.Database == nil || !st.Database.Reachable || st.Database.Since != nil {
		t.Errorf("/status database after recovery = %+v", st.Database)
	}
}

// A socket directory as PROSODY_DB_HOST is checked through the socket file.
func TestDatabaseCheckUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), ".s.PGSQL.5432")
	ok, detail := probeDatabase(t.Context(), "unix", sock, time.Second)
	if ok || !strings.Contains(detail, "no such file") {
		t.Errorf("missing socket: %v %q, want unreachable", ok, detail)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if ok, detail := probeDatabase(t.Context(), "unix", sock, time.Second); !ok {
		t.Errorf("listening socket: %v %q, want reachable", ok, detail)
	}
}
