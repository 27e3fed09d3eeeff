package supervise

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
	"golang.org/x/sys/unix"
)

// The tests in this file run the supervisor inside the test binary and so
// never use t.Parallel: its reaper waits for every child of the process.

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	noExec := filepath.Join(dir, "noexec.sh")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		args    []string
		code    int
		sig     string
		message string // expected on Stderr
	}{
		{name: "success", path: "/bin/sh", args: []string{"-c", "exit 0"}, code: 0},
		{name: "child code", path: "/bin/sh", args: []string{"-c", "exit 42"}, code: 42},
		{name: "killed by signal", path: "/bin/sh", args: []string{"-c", "kill -KILL $$"}, code: 137, sig: "SIGKILL"},
		{name: "terminated by signal", path: "/bin/sh", args: []string{"-c", "kill -TERM $$"}, code: 143, sig: "SIGTERM"},
		{name: "found in PATH", path: "sh", args: []string{"-c", "exit 7"}, code: 7},
		{name: "missing file", path: "/nonexistent/prosody", code: 127, message: "/nonexistent/prosody"},
		{name: "missing in PATH", path: "no-such-program-xyz", code: 127, message: "not found in PATH"},
		{name: "not executable", path: noExec, code: 126, message: "permission denied"},
		{name: "directory", path: dir, code: 126, message: dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startInProcess(t, Config{Path: tc.path, Args: tc.args})
			if code := p.wait(t, 10*time.Second); code != tc.code {
				t.Fatalf("Run = %d, want %d (stderr %q)", code, tc.code, p.stderr.String())
			}
			if tc.message != "" {
				if !strings.Contains(p.stderr.String(), tc.message) || !strings.Contains(p.stderr.String(), "exit "+strconv.Itoa(tc.code)) {
					t.Errorf("stderr = %q, want it to name %q and the exit code", p.stderr.String(), tc.message)
				}
				if n := p.rec.numStarted(); n != 0 {
					t.Errorf("ChildStarted called %d times for a child that cannot start", n)
				}
				return
			}
			if got := p.rec.signals; len(got) != 1 || got[0] != tc.sig {
				t.Errorf("ChildExited signals = %q, want [%q]", got, tc.sig)
			}
		})
	}
}

// TestStopTermReachesShellWrapperGroup: an `sh -c` wrapper waiting for a
// long command would only act on SIGTERM after the command ends; the group
// signal ends the command at once, so Run returns long before the grace.
func TestStopTermReachesShellWrapperGroup(t *testing.T) {
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", "sleep 60; echo unreachable"}, StopTimeout: 20 * time.Second})
	eventually(t, 5*time.Second, "sleep running in the child's group", func() bool { return len(groupMembers(p.sup.PID())) == 2 })
	start := time.Now()
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := p.wait(t, 10*time.Second)
	if code != 143 {
		t.Errorf("Run = %d, want 143 (sh ended by SIGTERM)", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop took %s: the group did not get SIGTERM", d)
	}
	if p.rec.stopping != 1 {
		t.Errorf("Stopping called %d times, want 1", p.rec.stopping)
	}
}

// TestStopKillsAfterGrace: a child that ignores SIGTERM is killed when the
// grace ends, and Run returns right then, not much later.
func TestStopKillsAfterGrace(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	const grace = 400 * time.Millisecond
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", `trap "" TERM; echo ok > ` + ready + `; while :; do sleep 0.05; done`}, StopTimeout: grace})
	waitFile(t, ready, 5*time.Second)
	start := time.Now()
	p.cancel()
	code := p.wait(t, 10*time.Second)
	d := time.Since(start)
	if code != 137 {
		t.Errorf("Run = %d, want 137", code)
	}
	if d < grace || d > grace+time.Second {
		t.Errorf("Run returned %s after the stop, want just after the %s grace", d, grace)
	}
}

// TestLeftoversInGroupAfterMainExit: processes the main child leaves in its
// group get SIGTERM, then SIGKILL after the grace; Run returns the main
// child's code once the group is empty, and reaps them all.
func TestLeftoversInGroupAfterMainExit(t *testing.T) {
	t.Run("terminable", func(t *testing.T) {
		p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", "sleep 60 & sleep 60 & exit 5"}, StopTimeout: 20 * time.Second})
		start := time.Now()
		if code := p.wait(t, 10*time.Second); code != 5 {
			t.Errorf("Run = %d, want 5", code)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s: leftovers were not sent SIGTERM", d)
		}
		if p.rec.reaped != 2 {
			t.Errorf("Reaped total = %d, want 2", p.rec.reaped)
		}
		assertNoChildren(t)
	})
	t.Run("ignoring TERM", func(t *testing.T) {
		const grace = 300 * time.Millisecond
		p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", `trap "" TERM; sleep 60 & exit 6`}, StopTimeout: grace})
		start := time.Now()
		if code := p.wait(t, 10*time.Second); code != 6 {
			t.Errorf("Run = %d, want 6", code)
		}
		if d := time.Since(start); d < grace || d > grace+time.Second {
			t.Errorf("took %s, want just after the %s grace", d, grace)
		}
		assertNoChildren(t)
	})
}

func TestRestartBackoffAndGiveUp(t *testing.T) {
	count := filepath.Join(t.TempDir(), "count")
	p := startInProcess(t, Config{
		Path: "/bin/sh", Args: []string{"-c", "echo x >> " + count + "; exit 3"},
		Restart: Policy{Mode: ModeOnFailure, Max: 3, Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	})
	if code := p.wait(t, 10*time.Second); code != 3 {
		t.Fatalf("Run = %d, want the last code 3", code)
	}
	b, err := os.ReadFile(count)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "x"); n != 4 {
		t.Errorf("child ran %d times, want 4 (first run + 3 restarts)", n)
	}
	want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 50 * time.Millisecond}
	if !slices.Equal(p.rec.restarting, want) {
		t.Errorf("Restarting delays = %v, want %v", p.rec.restarting, want)
	}
	if !slices.Equal(p.rec.gaveUp, []int{3}) {
		t.Errorf("GaveUp = %v, want [3]", p.rec.gaveUp)
	}
}

func TestRestartModes(t *testing.T) {
	for _, tc := range []struct {
		mode   RestartMode
		script string
		runs   int
		code   int
	}{
		{ModeNever, "exit 3", 1, 3},
		{ModeOnFailure, "exit 0", 1, 0},
		{ModeAlways, "exit 0", 3, 0},
	} {
		t.Run(string(tc.mode)+" "+tc.script, func(t *testing.T) {
			p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", tc.script},
				Restart: Policy{Mode: tc.mode, Max: 2, Backoff: time.Millisecond}})
			if code := p.wait(t, 10*time.Second); code != tc.code {
				t.Errorf("Run = %d, want %d", code, tc.code)
			}
			if n := p.rec.numStarted(); n != tc.runs {
				t.Errorf("started %d times, want %d", n, tc.runs)
			}
		})
	}
}

func TestStopDuringBackoffEndsAtOnce(t *testing.T) {
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", "exit 4"},
		Restart: Policy{Mode: ModeAlways, Backoff: time.Minute}})
	eventually(t, 5*time.Second, "a restart backoff", func() bool { return p.rec.numRestarting() == 1 })
	start := time.Now()
	if err := unix.Kill(os.Getpid(), unix.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 5*time.Second); code != 4 {
		t.Errorf("Run = %d, want the last code 4", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop during backoff took %s", d)
	}
}

// TestRestartRequest: Restart replaces a running child without counting a
// crash (mode never would otherwise end Run), and skips a pending backoff.
func TestRestartRequest(t *testing.T) {
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", "sleep 60"}, StopTimeout: 5 * time.Second})
	eventually(t, 5*time.Second, "child running", func() bool { return p.sup.PID() != 0 })
	first := p.sup.PID()
	if err := p.sup.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	second := p.sup.PID()
	if second == 0 || second == first {
		t.Fatalf("PID after Restart = %d, first was %d", second, first)
	}
	if procStatus(first) != nil {
		t.Errorf("old child %d still exists", first)
	}
	if !slices.Equal(p.rec.codes, []int{143}) || len(p.rec.restarting) != 0 {
		t.Errorf("exits %v restarting %v: want one exit 143 and no policy restart", p.rec.codes, p.rec.restarting)
	}
	p.cancel()
	if code := p.wait(t, 10*time.Second); code != 143 {
		t.Errorf("Run = %d, want 143", code)
	}
	if err := p.sup.Restart(); err != ErrNotRunning {
		t.Errorf("Restart after Run = %v, want ErrNotRunning", err)
	}

	t.Run("during backoff", func(t *testing.T) {
		p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", "exit 2"},
			Restart: Policy{Mode: ModeAlways, Backoff: time.Minute}})
		eventually(t, 5*time.Second, "a restart backoff", func() bool { return p.rec.numRestarting() == 1 })
		start := time.Now()
		if err := p.sup.Restart(); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if n := p.rec.numStarted(); n != 2 || time.Since(start) > 5*time.Second {
			t.Errorf("started %d times after %s, want 2 at once", n, time.Since(start))
		}
	})
}

// TestRestartChild: RestartChild acts only on the child it names, and a
// stopped (SIGSTOP) child gets SIGCONT after SIGTERM, so it ends by its own
// TERM handler within the grace instead of by SIGKILL when the grace ends.
func TestRestartChild(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", `trap "exit 7" TERM; echo $$ > ` + ready + `; while :; do sleep 0.05; done`},
		StopTimeout: 60 * time.Second})
	waitFile(t, ready, 5*time.Second)
	first := p.sup.PID()
	if err := p.sup.RestartChild(first + 100000); !errors.Is(err, ErrNotCurrent) {
		t.Fatalf("RestartChild(another pid) = %v, want ErrNotCurrent", err)
	}
	if err := p.sup.RestartChild(0); !errors.Is(err, ErrNotCurrent) {
		t.Fatalf("RestartChild(0) = %v, want ErrNotCurrent", err)
	}
	if p.rec.numStarted() != 1 || p.sup.PID() != first {
		t.Fatalf("a refused RestartChild restarted the child: started %d, pid %d (was %d)", p.rec.numStarted(), p.sup.PID(), first)
	}
	if err := unix.Kill(-first, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "child stopped", func() bool {
		st := procStatus(first)
		return st != nil && strings.HasPrefix(st["State"], "T")
	})
	start := time.Now()
	if err := p.sup.RestartChild(first); err != nil {
		t.Fatalf("RestartChild(running child): %v", err)
	}
	if second := p.sup.PID(); second == 0 || second == first {
		t.Fatalf("PID after RestartChild = %d, first was %d", second, first)
	}
	// Exit 7 is the child's own TERM handler; 137 would be SIGKILL after the 60s grace.
	p.rec.mu.Lock()
	codes := slices.Clone(p.rec.codes)
	p.rec.mu.Unlock()
	if !slices.Equal(codes, []int{7}) || p.rec.numRestarting() != 0 {
		t.Errorf("exits %v, policy restarts %d: want one exit 7 (TERM handled) and no policy restart", codes, p.rec.numRestarting())
	}
	t.Logf("stopped child replaced in %s", time.Since(start))
	if err := p.sup.RestartChild(first); !errors.Is(err, ErrNotCurrent) {
		t.Errorf("RestartChild(the replaced child) = %v, want ErrNotCurrent", err)
	}
}

// TestSignalAndIntercept: an intercepted SIGHUP is not forwarded (the
// caller reloads and signals the child itself); other signals are.
func TestSignalAndIntercept(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	ready := filepath.Join(dir, "ready")
	intercepted := make(chan os.Signal, 4)
	script := `trap "echo hup >> ` + log + `" HUP; trap "echo usr1 >> ` + log + `" USR1; echo ok > ` + ready + `; while :; do sleep 0.02; done`
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", script}, StopTimeout: time.Second,
		Intercept: func(s os.Signal) bool {
			if s == unix.SIGHUP {
				intercepted <- s
				return true
			}
			return false
		}})
	waitFile(t, ready, 5*time.Second)
	if err := unix.Kill(os.Getpid(), unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-intercepted:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP was not intercepted")
	}
	if err := unix.Kill(os.Getpid(), unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if got := waitFile(t, log, 5*time.Second); got != "usr1\n" {
		t.Fatalf("child log = %q, want only usr1 (SIGHUP must not be forwarded)", got)
	}
	if err := p.sup.Signal(unix.SIGHUP); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	eventually(t, 5*time.Second, "child to log hup", func() bool {
		b, _ := os.ReadFile(log)
		return string(b) == "usr1\nhup\n"
	})
	p.cancel()
	p.wait(t, 10*time.Second)
	if err := p.sup.Signal(unix.SIGHUP); err != ErrNoChild {
		t.Errorf("Signal after Run = %v, want ErrNoChild", err)
	}
}

// TestStdioIdentityAndNoDescriptorLeak: the child has exactly fds 0, 1, 2,
// the very files of the entrypoint, even when the entrypoint holds a
// descriptor opened without O_CLOEXEC.
func TestStdioIdentityAndNoDescriptorLeak(t *testing.T) {
	raw, err := syscall.Open(filepath.Join(t.TempDir(), "raw"), syscall.O_CREAT|syscall.O_RDWR, 0o600) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(raw)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startInProcess(t, Config{Path: "/bin/sleep", Args: []string{"60"}})
	var pid int
	eventually(t, 5*time.Second, "sleep exec'd", func() bool {
		pid = p.sup.PID()
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		return pid != 0 && strings.HasSuffix(exe, "sleep")
	})
	// Right after execve the dynamic loader of sleep briefly holds the
	// libraries it maps (fd 3): wait for the program itself. A descriptor
	// leaked from the entrypoint never goes away, so it still fails here.
	var fds []string
	fdsOf := func() []string {
		entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	wait.Until(t, 5*time.Second, "the child's descriptors to be exactly 0, 1, 2", func() error {
		if fds = fdsOf(); !slices.Equal(fds, []string{"0", "1", "2"}) {
			return fmt.Errorf("child fds = %v", fds)
		}
		return nil
	})
	for _, fd := range fds {
		mine, _ := os.Readlink("/proc/self/fd/" + fd)
		theirs, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd)
		if mine == "" || mine != theirs {
			t.Errorf("fd %s: child has %q, entrypoint has %q", fd, theirs, mine)
		}
	}
}

func TestCredentialDropsToProsody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root to check the privilege drop (run go test as root, as CI does)")
	}
	cred, err := LookupUser("prosody")
	if err != nil {
		t.Fatalf("%v (install the Debian package prosody, which creates the user)", err)
	}
	dir := t.TempDir()
	// t.TempDir's parent is 0700 root: the prosody user must pass through it.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, int(cred.UID), int(cred.GID)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "id")
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", `{ id -u; id -g; id -G; echo "$HOME"; } > ` + out},
		Cred: cred, Env: []string{"PATH=/usr/bin:/bin", "HOME=/root"}})
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("Run = %d, stderr %q", code, p.stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	u, g := strconv.Itoa(int(cred.UID)), strconv.Itoa(int(cred.GID))
	want := strings.Join([]string{u, g, g, cred.Home}, "\n") + "\n"
	if string(b) != want {
		t.Errorf("child id output = %q, want %q (uid, gid, only group, HOME)", b, want)
	}
}

func TestRunTwiceAndNewErrors(t *testing.T) {
	sigs := Notify()
	defer sigs.Stop()
	for _, cfg := range []Config{
		{Signals: sigs},
		{Path: "/bin/true"},
		{Path: "/bin/true", Signals: sigs, StopTimeout: -time.Second},
		{Path: "/bin/true", Signals: sigs, Restart: Policy{Mode: "sometimes"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
	sup, err := New(Config{Path: "/bin/true", Signals: sigs})
	if err != nil {
		t.Fatal(err)
	}
	if code := sup.Run(context.Background()); code != 0 {
		t.Errorf("Run = %d", code)
	}
	if code := sup.Run(context.Background()); code != 70 {
		t.Errorf("second Run = %d, want 70", code)
	}
}

// groupMembers lists the pids whose process group is pgid.
func groupMembers(pgid int) []int {
	if pgid == 0 {
		return nil
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := unix.Getpgid(pid); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// assertNoChildren fails when any process (zombie or not) has this test
// binary as parent.
func assertNoChildren(t *testing.T) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st := procStatus(pid); st != nil && st["PPid"] == strconv.Itoa(os.Getpid()) {
			t.Errorf("process %d (%s, state %s) is still a child of the entrypoint", pid, st["Name"], st["State"])
		}
	}
}

func BenchmarkStartWait(b *testing.B) {
	sigs := Notify()
	defer sigs.Stop()
	for b.Loop() {
		sup, err := New(Config{Path: "/bin/true", Signals: sigs})
		if err != nil {
			b.Fatal(err)
		}
		if code := sup.Run(context.Background()); code != 0 {
			b.Fatalf("Run = %d", code)
		}
	}
}

// TestBeforeStart: the hook runs before every start (first, policy restarts,
// Restart), and what it writes is what that start of the child reads; a
// hook error leaves the child unstarted and ends Run with CodeBeforeStart.
func TestBeforeStart(t *testing.T) {
	dir := t.TempDir()
	cfgFile, seen := filepath.Join(dir, "config"), filepath.Join(dir, "seen")
	calls := 0
	hook := func() error {
		calls++ // Run's goroutine only
		if calls == 5 {
			return fmt.Errorf("config %s cannot be restored", cfgFile)
		}
		return os.WriteFile(cfgFile, []byte(strconv.Itoa(calls)), 0o644)
	}
	// Each run appends the config it started with; runs 1-3 fail (2 policy
	// restarts), run 4 comes from Restart and waits, the 5th start is refused.
	script := `cat ` + cfgFile + ` >> ` + seen + `; echo >> ` + seen + `; n=$(cat ` + cfgFile + `); [ "$n" -ge 4 ] && exec sleep 60; exit 3`
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", script}, BeforeStart: hook,
		Restart: Policy{Mode: ModeOnFailure, Max: 2, Backoff: time.Millisecond}})
	eventually(t, 10*time.Second, "three runs", func() bool { return strings.Count(readOrEmpty(seen), "\n") == 3 })
	if code := p.wait(t, 10*time.Second); code != 3 {
		t.Fatalf("Run = %d, want 3 after the restarts ran out", code)
	}
	if got := readOrEmpty(seen); got != "1\n2\n3\n" {
		t.Fatalf("configs seen by the runs = %q, want each run to see its own hook call", got)
	}

	t.Run("Restart and a failing hook", func(t *testing.T) {
		calls = 3
		p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", script}, BeforeStart: hook, StopTimeout: 5 * time.Second})
		eventually(t, 5*time.Second, "run 4 waiting", func() bool { return strings.HasSuffix(readOrEmpty(seen), "4\n") })
		err := p.sup.Restart()
		if err == nil || !strings.Contains(err.Error(), "cannot be restored") {
			t.Fatalf("Restart with a failing hook = %v, want its error", err)
		}
		if code := p.wait(t, 10*time.Second); code != CodeBeforeStart {
			t.Fatalf("Run = %d, want CodeBeforeStart %d", code, CodeBeforeStart)
		}
		if n := p.rec.numStarted(); n != 1 {
			t.Errorf("ChildStarted %d times, want 1 (the refused start never ran)", n)
		}
		if !strings.Contains(p.stderr.String(), "cannot be restored") {
			t.Errorf("stderr = %q, want the hook's error", p.stderr.String())
		}
	})
}

func readOrEmpty(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestUmaskIsTheChildsOnly: Config.Umask is the umask the child starts with
// (Prosody 13's server never applies its `umask` option, so this is what
// keeps its files private), at every start, while the entrypoint's own umask
// stays what it was.
func TestUmaskIsTheChildsOnly(t *testing.T) {
	own := unix.Umask(0o022)
	defer unix.Umask(own)
	out := filepath.Join(t.TempDir(), "umask")
	p := startInProcess(t, Config{Path: "/bin/sh", Args: []string{"-c", "umask > " + out},
		Umask: func() uint32 { return 0o077 }})
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("Run = %d, want 0 (stderr %q)", code, p.stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != "0077" {
		t.Errorf("child's umask = %q, want 0077", strings.TrimSpace(string(got)))
	}
	if now := unix.Umask(0o022); now != 0o022 {
		t.Errorf("entrypoint's umask = %#o after the start, want it unchanged (022)", now)
	}
}
