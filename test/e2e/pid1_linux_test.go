package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
)

// earlyTermWindow is the target of issue 21: a SIGTERM that reaches the
// entrypoint as PID 1 later than this after the Go runtime first caught it
// is handled (the child is stopped, the exit is 0 or 143), never the
// runtime's exit 2. Package earlysignal is done with SIGTERM about 1 ms after
// exec on an idle machine (bench/run --only earlyterm). The window is
// counted in time the entrypoint could run: on a loaded 2-CPU machine it can
// wait for a CPU for milliseconds in the middle of it, and no program can
// register sooner than it runs, so that wait is taken off.
const earlyTermWindow = 2 * time.Millisecond

// TestPID1EarlyTermConformance: 100 starts of `entrypoint -- sleep 5` as PID 1
// of a new PID namespace, each sent SIGTERM 0-5 ms after the process first
// catches SIGTERM (spread evenly). A TERM inside the window may still meet
// the runtime's default (exit 2); one after it, or after earlysignal's init
// returned, must stop the child and exit 0 (before the child started) or 143
// (the child died of it).
func TestPID1EarlyTermConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the entrypoint runs as PID 1 of a new PID namespace (CI runs the e2e tests as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := []string{entrypointBin, "--", "sleep", "5"}
	env := []string{"PATH=" + os.Getenv("PATH"), "PROSODY_HEALTH_LISTEN=off"}
	const runs = 100
	var early, late []string
	for i := range runs {
		delay := time.Duration(i) * 5 * time.Millisecond / runs
		// A late exit 2 is tried twice more at the same delay: a regression
		// repeats every time, a stall of a loaded machine does not.
		var fails []string
		for attempt := 0; attempt < 3 && len(fails) == attempt; attempt++ {
			r, err := entrypointtest.StartEarlyTerm(ctx, argv, env, delay)
			if err != nil {
				t.Fatalf("run %d: %v\n%s", i, err, r.Stderr)
			}
			switch {
			case r.Code == 0 || r.Code == 143:
			case r.Code == 2 && r.Sent-r.Starved <= earlyTermWindow:
				early = append(early, fmt.Sprintf("%.2fms(-%.2f)", ms(r.Sent), ms(r.Starved)))
			default:
				fails = append(fails, fmt.Sprintf("run %d: TERM %.2f ms after the catch (of which the entrypoint waited %.2f ms for a CPU; caught %.2f ms after start): exit %d\n%s",
					i, ms(r.Sent), ms(r.Starved), ms(r.Caught), r.Code, r.Stderr))
			}
		}
		if len(fails) == 3 || (len(fails) > 0 && !strings.Contains(fails[0], ": exit 2\n")) {
			late = append(late, fails...)
		} else if len(fails) > 0 {
			t.Logf("late exit 2 not repeated (a stall of the machine): %s", fails[0])
		}
	}
	t.Logf("exit 2 within the %s window (TERM sent after the catch, minus time waiting for a CPU): %d of %d runs %v", earlyTermWindow, len(early), runs, early)
	if len(late) > 0 {
		t.Errorf("%d runs ended wrongly (want 0 or 143; exit 2 only within %s):\n%s", len(late), earlyTermWindow, strings.Join(late, "\n"))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestPlainInitRunsAsAnotherUser: PROSODY_UID and PROSODY_GID apply to any
// command under plain init, by number or name, as gosu would: a user name
// brings its primary and supplementary groups, an explicit group replaces
// them, and none of the entrypoint's root groups is left. `id` itself says.
func TestPlainInitRunsAsAnotherUser(t *testing.T) {
	t.Parallel()
	// The postgres user (Debian's postgresql package) is in ssl-cert too;
	// its ids depend on the install order, so id tells them.
	idOut, err := exec.Command("id", "postgres").Output()
	if err != nil {
		t.Fatalf("id postgres: %v (install the Debian package postgresql)", err)
	}
	pgID := strings.TrimSpace(string(idOut))
	if !strings.Contains(pgID, "ssl-cert") {
		t.Fatalf("id postgres = %q: want a user with a supplementary group (ssl-cert)", pgID)
	}
	pgUID, _, _ := strings.Cut(pgID, " ")
	cases := []struct {
		name     string
		env      map[string]string
		want     string // id's output
		code     int
		stderrIs string
	}{
		{"uid by number", map[string]string{"PROSODY_UID": "65534"}, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)", 0, ""},
		{"user name with a supplementary group", map[string]string{"PROSODY_UID": "postgres"}, pgID, 0, ""},
		{"user and group", map[string]string{"PROSODY_UID": "postgres", "PROSODY_GID": "nogroup"}, pgUID + " gid=65534(nogroup) groups=65534(nogroup)", 0, ""},
		{"unknown user", map[string]string{"PROSODY_UID": "no-such-user-pfe"}, "", 78, `PROSODY_UID="no-such-user-pfe"`},
		{"uid without a group", map[string]string{"PROSODY_UID": "4000"}, "", 78, "set PROSODY_GID too"},
	}
	for _, c := range cases {
		s := NewServer(t, Options{Env: c.env, Args: []string{"--", "id"}}).Start()
		code, ok := s.Wait(30 * time.Second)
		if !ok || code != c.code {
			t.Errorf("%s: exit %d (exited %v), want %d\n%s", c.name, code, ok, c.code, s.Stderr())
			continue
		}
		if got := strings.TrimSpace(s.Stdout()); c.code == 0 && got != c.want {
			t.Errorf("%s: id printed %q, want %q", c.name, got, c.want)
		}
		if c.stderrIs != "" && !strings.Contains(s.Stderr(), c.stderrIs) {
			t.Errorf("%s: stderr does not name %q:\n%s", c.name, c.stderrIs, s.Stderr())
		}
	}
}

// TestPlainInitNotify: PROSODY_NOTIFY=true gives a plain-init child a
// NOTIFY_SOCKET, and /readyz answers 503 until READY=1 arrives, 200 after.
// The child is a shell that runs systemd-notify, which sends from its own
// pid: plain init trusts every process that can open the socket, and the
// socket belongs to the child's user (here nobody), mode 0600, in a
// directory of its own, so another user (prosody) cannot make it ready.
// Without the setting the child gets no socket and is ready once it runs.
func TestPlainInitNotify(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("systemd-notify"); err != nil {
		t.Fatal("systemd-notify not found: install the Debian package systemd")
	}
	dir := prosodytest.Dir(t)
	if err := os.Chmod(dir, 0o777); err != nil { // nobody writes the socket's name here
		t.Fatal(err)
	}
	gate := filepath.Join(dir, "go")
	sockFile := filepath.Join(dir, "socket")
	script := `echo "$NOTIFY_SOCKET" > ` + sockFile + `; while [ ! -e ` + gate + ` ]; do sleep 0.02; done; systemd-notify --ready; exec sleep 60`
	s := NewServer(t, Options{Env: map[string]string{"PROSODY_NOTIFY": "true", "PROSODY_UID": "nobody"},
		Args: []string{"--", "sh", "-c", script}}).Start()
	var sock string
	s.WaitFor(20*time.Second, "the child to write its NOTIFY_SOCKET", func() bool {
		b, _ := os.ReadFile(sockFile)
		sock = strings.TrimSpace(string(b))
		return sock != ""
	})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || st.Uid != 65534 {
		t.Errorf("notify socket %s: mode %v uid %d, want 0600 owned by nobody (65534)", sock, fi.Mode().Perm(), st.Uid)
	}
	uid, gid := prosodytest.IDs(t)
	if out, err := prosodytest.As(t, uid, gid, []string{"NOTIFY_SOCKET=" + sock}, "systemd-notify", "--ready"); err == nil {
		t.Errorf("systemd-notify --ready as prosody reached the child's socket:\n%s", out)
	}
	code, body, err := s.Get("/readyz")
	if err != nil || code != 503 || !strings.Contains(body, "READY=1") {
		t.Fatalf("/readyz before READY=1: %d %q (%v), want 503 waiting for READY=1", code, body, err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.WaitReady(20 * time.Second)

	plain := NewServer(t, Options{Args: []string{"--", "sh", "-c", `[ -z "$NOTIFY_SOCKET" ] && exec sleep 60`}}).Start()
	plain.WaitReady(20 * time.Second)
}
