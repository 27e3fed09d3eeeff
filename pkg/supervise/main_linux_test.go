package supervise

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// helperEnv, when set, makes the test binary act as the entrypoint: it
// holds a JSON helperConfig, and the binary calls Notify first, supervises
// the child and exits with Run's code. Tests start it (often as PID 1 of a
// PID namespace) so the real supervisor runs as its own process.
const helperEnv = "SUPERVISE_TEST_HELPER"

type helperConfig struct {
	Args        []string      // Args[0] is the program
	StopTimeout time.Duration // grace
	Policy      Policy
	Report      string // file for the JSON helperReport
	Notified    string // file created right after Notify returns
}

type helperReport struct {
	Code     int
	PID      int // os.Getpid() of the helper
	Started  int
	Reaped   int
	Stopping int
	Exits    []int
	Leftover []string // processes other than the helper in /proc at exit
}

// replaceEnv, when set, makes the test binary replace itself with `id` as
// the user it names (RunAs with no group), as the prosodyctl wrapper does.
const replaceEnv = "SUPERVISE_TEST_REPLACE_AS"

func TestMain(m *testing.M) {
	if name := os.Getenv(replaceEnv); name != "" {
		cred, err := RunAs(name, "")
		if err == nil {
			err = ExecReplace("id", nil, []string{"PATH=" + os.Getenv("PATH")}, cred)
		}
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		os.Exit(99)
	}
	if cfg := os.Getenv(helperEnv); cfg != "" {
		sigs := Notify() // first, as in the entrypoint's main
		os.Exit(runHelper(sigs, cfg))
	}
	os.Exit(m.Run())
}

func runHelper(sigs *Signals, raw string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		fmt.Fprintf(os.Stderr, "helper config: %v\n", err)
		return 99
	}
	if hc.Notified != "" {
		if err := os.WriteFile(hc.Notified, nil, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "helper: %v\n", err)
			return 99
		}
	}
	rec := &recorder{}
	env := make([]string, 0)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, helperEnv+"=") {
			env = append(env, kv)
		}
	}
	log, _ := zap.NewDevelopment()
	sup, err := New(Config{
		Path: hc.Args[0], Args: hc.Args[1:], Env: env, StopTimeout: hc.StopTimeout,
		Restart: hc.Policy, Signals: sigs, Logger: log, Observer: rec,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		return 99
	}
	code := sup.Run(context.Background())
	rep := helperReport{Code: code, PID: os.Getpid(), Leftover: otherProcesses()}
	rec.mu.Lock()
	rep.Started, rep.Reaped, rep.Stopping, rep.Exits = len(rec.started), rec.reaped, rec.stopping, rec.codes
	rec.mu.Unlock()
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(hc.Report, b, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		return 99
	}
	return code
}

// otherProcesses lists "pid state name" of every process in /proc except
// this one (inside a PID namespace with its own /proc: all that is left).
func otherProcesses() []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		st := procStatus(pid)
		out = append(out, fmt.Sprintf("%d %s %s", pid, st["State"], st["Name"]))
	}
	return out
}

// procStatus parses /proc/<pid>/status into a map (nil when gone).
func procStatus(pid int) map[string]string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu         sync.Mutex
	started    []int
	codes      []int
	signals    []string
	reaped     int
	restarting []time.Duration
	stopping   int
	gaveUp     []int
}

func (r *recorder) ChildStarted(pid int) {
	r.mu.Lock()
	r.started = append(r.started, pid)
	r.mu.Unlock()
}
func (r *recorder) ChildExited(_ int, code int, sig string) {
	r.mu.Lock()
	r.codes, r.signals = append(r.codes, code), append(r.signals, sig)
	r.mu.Unlock()
}
func (r *recorder) Reaped(n int) { r.mu.Lock(); r.reaped += n; r.mu.Unlock() }
func (r *recorder) Restarting(_ int, d time.Duration) {
	r.mu.Lock()
	r.restarting = append(r.restarting, d)
	r.mu.Unlock()
}
func (r *recorder) Stopping()       { r.mu.Lock(); r.stopping++; r.mu.Unlock() }
func (r *recorder) GaveUp(code int) { r.mu.Lock(); r.gaveUp = append(r.gaveUp, code); r.mu.Unlock() }

func (r *recorder) numStarted() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.started) }
func (r *recorder) numRestarting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.restarting)
}

// inProcess runs a Supervisor inside the test binary. Tests using it must
// not run in parallel with anything that starts processes: its reaper waits
// for every child of the test binary.
type inProcess struct {
	sup    *Supervisor
	rec    *recorder
	sigs   *Signals
	stderr *bytes.Buffer
	cancel context.CancelFunc
	done   chan int
}

func startInProcess(t *testing.T, cfg Config) *inProcess {
	t.Helper()
	p := &inProcess{rec: &recorder{}, sigs: Notify(), stderr: &bytes.Buffer{}, done: make(chan int, 1)}
	cfg.Signals, cfg.Observer, cfg.Stderr = p.sigs, p.rec, p.stderr
	cfg.Logger = zaptest.NewLogger(t)
	sup, err := New(cfg)
	if err != nil {
		p.sigs.Stop()
		t.Fatalf("New: %v", err)
	}
	p.sup = sup
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- sup.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
		p.sigs.Stop()
	})
	return p
}

// wait returns Run's code, failing the test after limit.
func (p *inProcess) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case code := <-p.done:
		p.done <- code // for Cleanup
		return code
	case <-time.After(limit):
		t.Fatalf("Run did not return within %s", limit)
		return -1
	}
}

// eventually polls cond every 5ms until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	wait.Until(t, limit, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

// waitFile waits until path exists and returns its content.
func waitFile(t *testing.T, path string, limit time.Duration) string {
	t.Helper()
	var b []byte
	eventually(t, limit, "file "+filepath.Base(path), func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil && len(b) > 0
	})
	return string(b)
}
