package supervise

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperProc is the test binary running as the entrypoint in its own
// process, as PID 1 of a new PID namespace when started with pid1.
type helperProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	hc             helperConfig
	exited         chan struct{} // closed when cmd.Wait returned
}

func startHelper(t *testing.T, hc helperConfig, pid1 bool, wrapper ...string) *helperProc {
	t.Helper()
	dir := t.TempDir()
	hc.Report = filepath.Join(dir, "report.json")
	hc.Notified = filepath.Join(dir, "notified")
	raw, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{}, wrapper...)
	if pid1 {
		if os.Geteuid() != 0 {
			t.Fatal("PID 1 tests need root for unshare --pid (run go test as root, as CI does)")
		}
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Fatal("unshare not found: install the Debian package util-linux")
		}
		// --kill-child: PID 1 dies with unshare when a test gives up.
		argv = append(argv, "unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
	}
	argv = append(argv, exe, "-test.run=^$")
	h := &helperProc{hc: hc, exited: make(chan struct{})}
	h.cmd = exec.Command(argv[0], argv[1:]...)
	h.cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	h.cmd.Stdout, h.cmd.Stderr = &h.stdout, &h.stderr
	h.cmd.WaitDelay = 5 * time.Second
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = h.cmd.Wait() // the exit code is checked against the report
		close(h.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-h.exited:
		default:
			_ = h.cmd.Process.Kill()
			<-h.exited
		}
		if t.Failed() {
			t.Logf("helper stderr:\n%s", h.stderr.String())
		}
	})
	return h
}

// entrypointPID is the host pid of the supervisor: the helper itself, or
// the PID 1 that unshare forked.
func (h *helperProc) entrypointPID(t *testing.T, pid1 bool) int {
	t.Helper()
	if !pid1 {
		return h.cmd.Process.Pid
	}
	var pid int
	p := strconv.Itoa(h.cmd.Process.Pid)
	eventually(t, 5*time.Second, "unshare's child", func() bool {
		b, _ := os.ReadFile("/proc/" + p + "/task/" + p + "/children")
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid != 0
	})
	return pid
}

// finish waits for the helper and returns its report.
func (h *helperProc) finish(t *testing.T, limit time.Duration) helperReport {
	t.Helper()
	select {
	case <-h.exited:
	case <-time.After(limit):
		t.Fatalf("entrypoint did not exit within %s", limit)
	}
	var rep helperReport
	b, err := os.ReadFile(h.hc.Report)
	if err != nil {
		t.Fatalf("no report (exit %v): %v", h.cmd.ProcessState, err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if got := h.cmd.ProcessState.ExitCode(); got != rep.Code {
		t.Errorf("process exit code %d differs from Run's %d", got, rep.Code)
	}
	return rep
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// TestPID1EarlySigterm: SIGTERM right after Notify, before or while the
// child starts, ends the entrypoint cleanly: never the Go runtime's exit 2,
// never a hang.
func TestPID1EarlySigterm(t *testing.T) {
	for i := range 3 {
		h := startHelper(t, helperConfig{Args: sh(`trap "exit 0" TERM; while :; do sleep 0.05; done`), StopTimeout: 10 * time.Second}, true)
		pid := h.entrypointPID(t, true)
		eventually(t, 5*time.Second, "Notify to return", func() bool { _, err := os.Stat(h.hc.Notified); return err == nil })
		if err := unix.Kill(pid, unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		rep := h.finish(t, 5*time.Second)
		if rep.Code != 0 && rep.Code != 143 {
			t.Errorf("run %d: exit %d, want 0 (stopped before the child, or child trapped TERM) or 143 (child ended by TERM before its trap)", i, rep.Code)
		}
		if rep.PID != 1 || len(rep.Leftover) != 0 {
			t.Errorf("run %d: pid %d, leftover %v: want PID 1 alone", i, rep.PID, rep.Leftover)
		}
	}
}

// TestPID1OrphanStorm: 200 background grandchildren of a child that exits
// become orphans of PID 1; every one is terminated and reaped, no zombie stays.
func TestPID1OrphanStorm(t *testing.T) {
	h := startHelper(t, helperConfig{Args: sh(`for i in $(seq 200); do sleep 30 & done; exit 0`), StopTimeout: 10 * time.Second}, true)
	rep := h.finish(t, 10*time.Second)
	if rep.Code != 0 || rep.Reaped != 200 || len(rep.Leftover) != 0 {
		t.Errorf("code %d, reaped %d, leftover %v: want 0, 200, none", rep.Code, rep.Reaped, rep.Leftover)
	}
}

// TestPID1CoalescedSIGCHLD: the main child and 100 orphans end at the same
// moment, so SIGCHLDs coalesce; the reaper still finds all of them and
// recognises the main child among them.
func TestPID1CoalescedSIGCHLD(t *testing.T) {
	h := startHelper(t, helperConfig{Args: sh(`for i in $(seq 100); do sleep 0.3 & done; exec sleep 0.3`), StopTimeout: 10 * time.Second}, true)
	rep := h.finish(t, 10*time.Second)
	if rep.Code != 0 || rep.Reaped != 100 || len(rep.Exits) != 1 || len(rep.Leftover) != 0 {
		t.Errorf("code %d, reaped %d, exits %v, leftover %v: want 0, 100, [0], none", rep.Code, rep.Reaped, rep.Exits, rep.Leftover)
	}
}

// TestPID1IgnoredTermKilledAfterGrace: PID 1 gets SIGTERM, the child ignores
// it; the group is killed when the grace ends and the entrypoint exits 137
// right then.
func TestPID1IgnoredTermKilledAfterGrace(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	const grace = 500 * time.Millisecond
	h := startHelper(t, helperConfig{Args: sh(`trap "" TERM; echo ok > ` + ready + `; while :; do sleep 0.05; done`), StopTimeout: grace}, true)
	pid := h.entrypointPID(t, true)
	waitFile(t, ready, 5*time.Second)
	start := time.Now()
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rep := h.finish(t, 10*time.Second)
	d := time.Since(start)
	if rep.Code != 137 || rep.Stopping != 1 || len(rep.Leftover) != 0 {
		t.Errorf("code %d, stopping %d, leftover %v: want 137, 1, none", rep.Code, rep.Stopping, rep.Leftover)
	}
	if d < grace || d > grace+time.Second {
		t.Errorf("exited %s after SIGTERM, want just after the %s grace", d, grace)
	}
}

// blockAndIgnore is a python3 exec wrapper that starts its argv with
// SIGUSR1, SIGTERM, SIGHUP and SIGINT blocked and SIGUSR2, SIGQUIT and
// SIGPIPE ignored, as a careless parent could.
const blockAndIgnore = `import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
for s in (signal.SIGUSR2, signal.SIGQUIT, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
os.execvp(sys.argv[1], sys.argv[1:])
`

// TestChildSignalStateIsReset: whatever the entrypoint inherited blocked
// or ignored, its child starts with nothing blocked and nothing ignored.
func TestChildSignalStateIsReset(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 not found: install the Debian package python3")
	}
	// Control: the wrapper really hands a blocked and ignored state down.
	ctl, err := exec.Command("python3", "-c", blockAndIgnore, "cat", "/proc/self/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	if blk, ign := sigFields(string(ctl)); blk == 0 || ign == 0 {
		t.Fatalf("control: SigBlk %x SigIgn %x, want both non-zero", blk, ign)
	}
	h := startHelper(t, helperConfig{Args: []string{"/bin/cat", "/proc/self/status"}}, false, "python3", "-c", blockAndIgnore)
	rep := h.finish(t, 10*time.Second)
	if rep.Code != 0 {
		t.Fatalf("exit %d", rep.Code)
	}
	blk, ign := sigFields(h.stdout.String())
	if blk != 0 || ign != 0 {
		t.Errorf("child SigBlk %016x SigIgn %016x, want both 0", blk, ign)
	}
}

// TestJobControlSignalsDoNotStopEntrypoint: SIGTSTP reaches the child (which
// stops) while the entrypoint keeps running; SIGCONT resumes the child.
func TestJobControlSignalsDoNotStopEntrypoint(t *testing.T) {
	h := startHelper(t, helperConfig{Args: []string{"/bin/sleep", "60"}, StopTimeout: 5 * time.Second}, false)
	pid := h.entrypointPID(t, false)
	eventually(t, 5*time.Second, "Notify to return", func() bool { _, err := os.Stat(h.hc.Notified); return err == nil })
	var child int
	eventually(t, 5*time.Second, "sleep to run", func() bool {
		child = 0
		if kids := childrenOf(pid); len(kids) == 1 {
			child = kids[0]
		}
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(child) + "/exe")
		return child != 0 && strings.HasSuffix(exe, "sleep")
	})
	for _, sig := range []unix.Signal{unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU} {
		if err := unix.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "child stopped by "+unix.SignalName(sig), func() bool {
			return strings.HasPrefix(procStatus(child)["State"], "T")
		})
		if st := procStatus(pid)["State"]; strings.HasPrefix(st, "T") {
			t.Fatalf("entrypoint stopped by %s: state %s", unix.SignalName(sig), st)
		}
		if err := unix.Kill(pid, unix.SIGCONT); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "child resumed", func() bool {
			return !strings.HasPrefix(procStatus(child)["State"], "T")
		})
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if rep := h.finish(t, 10*time.Second); rep.Code != 143 {
		t.Errorf("exit %d, want 143", rep.Code)
	}
}

// sigFields reads SigBlk and SigIgn from a /proc/<pid>/status text.
func sigFields(status string) (blk, ign uint64) {
	for _, line := range strings.Split(status, "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "SigBlk":
			blk = n
		case "SigIgn":
			ign = n
		}
	}
	return blk, ign
}

// childrenOf lists the children of pid, whichever of its threads forked them.
func childrenOf(pid int) []int {
	var kids []int
	files, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(field); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// TestSIGPIPEIsNotForwarded: a SIGPIPE reaching the entrypoint is its own
// (a health client that hung up mid-answer: with every signal registered,
// Go delivers the socket write's SIGPIPE to the channel) and must not reach
// the child. Forwarded, it killed the child with 141 whenever a /metrics
// scraper closed its connection early. A kill(2) of SIGPIPE looks the same
// to the entrypoint and stands in for the write, whose timing a test cannot
// force.
func TestSIGPIPEIsNotForwarded(t *testing.T) {
	h := startHelper(t, helperConfig{Args: []string{"/bin/sleep", "60"}, StopTimeout: 5 * time.Second}, false)
	pid := h.entrypointPID(t, false)
	eventually(t, 5*time.Second, "Notify to return", func() bool { _, err := os.Stat(h.hc.Notified); return err == nil })
	var child int
	eventually(t, 5*time.Second, "sleep to run", func() bool {
		child = 0
		if kids := childrenOf(pid); len(kids) == 1 {
			child = kids[0]
		}
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(child) + "/exe")
		return child != 0 && strings.HasSuffix(exe, "sleep")
	})
	for range 3 {
		if err := unix.Kill(pid, unix.SIGPIPE); err != nil {
			t.Fatal(err)
		}
	}
	// SIGUSR1 is forwarded: once it has killed the child (sleep's default
	// action), every SIGPIPE sent before it has been handled.
	if err := unix.Kill(pid, unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	rep := h.finish(t, 10*time.Second)
	if want := 128 + int(unix.SIGUSR1); rep.Code != want {
		t.Errorf("exit %d, want %d (the child killed by the forwarded SIGUSR1, not by SIGPIPE: 141)", rep.Code, want)
	}
}
