// Command soak runs the reliability soaks of prosody-pfe against the real
// entrypoint, real Prosody 13 and real XMPP clients, on 127.0.0.1 only, each
// scenario bounded in count and time, and prints (or writes) RELIABILITY.md.
// soak/run is the one command that builds and runs it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	Quick      bool
	Only       []string
	Root       string // the repository (config/ and soak/clients/)
	Entrypoint string // the binary under test
	Python     string
	MD         string // where to write the report; "" prints it only
	Seed       int64
}

// scenario is one soak: N steps within Limit.
type scenario struct {
	Name  string
	N     int
	Limit time.Duration
	Run   func(r *runner, sc scenario, res *result) error
}

// runner carries what every scenario needs.
type runner struct {
	opt     options
	tmp     string // parent of every server directory
	clients clientConfig
	log     io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	var only string
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.Quick, "quick", false, "small counts for CI (under 6 minutes)")
	fs.StringVar(&only, "only", "", "comma-separated scenarios: kill9, edits, sigterm, crash, secrets, wedge, hostile")
	fs.StringVar(&o.Root, "root", ".", "the repository root")
	fs.StringVar(&o.Entrypoint, "entrypoint", "bin/entrypoint", "the entrypoint binary under test")
	fs.StringVar(&o.Python, "python", "/usr/bin/python3", "a python3 with slixmpp (Debian python3-slixmpp)")
	fs.StringVar(&o.MD, "md", "", "write the report to this file (default: print only)")
	fs.Int64Var(&o.Seed, "seed", time.Now().UnixNano(), "seed of the random start-up moments")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if only != "" {
		o.Only = strings.Split(only, ",")
	}
	r, cleanup, err := newRunner(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 1
	}
	defer cleanup()

	// An interrupted soak (Ctrl-C, soak/run's timeout) must not leave servers
	// behind: they run in their own process groups, so stop them first.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	finished := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(finished)
	defer signal.Stop(sigs)
	wg.Go(func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "soak: %s: stopping every server started\n", sig)
			r.abort()
			cleanup()
			os.Exit(130)
		case <-finished:
		}
	})

	all := scenarios(o.Quick)
	var results []result
	failed := false
	for _, sc := range all {
		if len(o.Only) > 0 && !slices.Contains(o.Only, sc.Name) {
			continue
		}
		fmt.Fprintf(stderr, "soak: %s: N=%d, limit %s\n", sc.Name, sc.N, sc.Limit)
		res := r.runScenario(sc)
		results = append(results, res)
		for _, f := range res.Figures {
			fmt.Fprintf(stderr, "soak: %s: %s = %s (target %s) %s\n", sc.Name, f.Name, f.Value, f.Target, okWord(f.OK))
		}
		for _, p := range res.Problems {
			fmt.Fprintf(stderr, "soak: %s: FAIL: %s\n", sc.Name, p)
		}
		failed = failed || !res.ok()
	}
	report := renderReport(o, results)
	if o.MD != "" {
		if err := os.WriteFile(o.MD, []byte(report), 0o644); err != nil {
			fmt.Fprintf(stderr, "soak: write report: %v\n", err)
			return 1
		}
	}
	fmt.Fprint(stdout, report)
	if failed {
		fmt.Fprintln(stderr, "soak: FAILED (see the problems above)")
		return 1
	}
	return 0
}

// newRunner checks the machine and makes the directory that holds every server.
func newRunner(o options, log io.Writer) (*runner, func(), error) {
	if os.Geteuid() != 0 {
		return nil, nil, fmt.Errorf("run as root: the entrypoint drops Prosody to the prosody user, which only root can do")
	}
	if _, err := user.Lookup("prosody"); err != nil {
		return nil, nil, fmt.Errorf("user prosody not found: install Debian package prosody (13, bookworm-backports): %w", err)
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, nil, err
	}
	o.Root = root
	if o.Entrypoint, err = filepath.Abs(o.Entrypoint); err != nil {
		return nil, nil, err
	}
	for _, need := range []struct{ path, pkg string }{
		{o.Entrypoint, "run `make build` first"},
		{o.Python, "install Debian package python3-slixmpp"},
		{"/usr/bin/prosody", "install Debian package prosody"},
		{"/usr/bin/luac5.4", "install Debian package lua5.4"},
		{"/usr/bin/sqlite3", "install Debian package sqlite3"},
	} {
		if _, err := os.Stat(need.path); err != nil {
			return nil, nil, fmt.Errorf("%s is missing: %s", need.path, need.pkg)
		}
	}
	tmp, err := os.MkdirTemp("", "prosody-soak-")
	if err != nil {
		return nil, nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, nil, err
	}
	r := &runner{opt: o, tmp: tmp, log: log,
		clients: clientConfig{Python: o.Python, Script: filepath.Join(root, "soak", "clients", "soak_client.py")}}
	return r, func() { os.RemoveAll(tmp) }, nil
}

// abort SIGKILLs every entrypoint this process started (their process groups)
// and every process that mentions the soak's directory (prosody and its checks).
func (r *runner) abort() {
	ps, _ := processes()
	for _, p := range ps {
		if p.PPID == os.Getpid() && p.Cmdline == r.opt.Entrypoint {
			_ = syscall.Kill(-p.PID, syscall.SIGKILL)
		}
	}
	left, _ := mentioning(r.tmp)
	for _, p := range left {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
}

// scenarios lists every soak with its count and time limit.
func scenarios(quick bool) []scenario {
	pick := func(full, q int) int {
		if quick {
			return q
		}
		return full
	}
	limit := func(full, q time.Duration) time.Duration {
		if quick {
			return q
		}
		return full
	}
	return []scenario{
		{Name: "kill9", N: pick(100, 10), Limit: limit(12*time.Minute, 70*time.Second), Run: soakKill9},
		{Name: "edits", N: pick(1000, 50), Limit: limit(20*time.Minute, 70*time.Second), Run: soakEdits},
		{Name: "sigterm", N: pick(100, 10), Limit: limit(6*time.Minute, 40*time.Second), Run: soakSigterm},
		{Name: "crash", N: pick(10, 2), Limit: limit(4*time.Minute, 40*time.Second), Run: soakCrash},
		{Name: "secrets", N: 1, Limit: limit(time.Minute, 30*time.Second), Run: soakSecrets},
		{Name: "wedge", N: pick(5, 1), Limit: limit(3*time.Minute, 50*time.Second), Run: soakWedge},
		{Name: "hostile", N: pick(50, 5), Limit: limit(4*time.Minute, 40*time.Second), Run: soakHostile},
	}
}

// runScenario runs one soak and records its wall time; a run past its limit is a problem.
func (r *runner) runScenario(sc scenario) result {
	res := result{Name: sc.Name, N: sc.N, Limit: sc.Limit}
	start := time.Now()
	if err := sc.Run(r, sc, &res); err != nil {
		res.problem("%v", err)
	}
	res.Elapsed = time.Since(start)
	if res.Elapsed > sc.Limit {
		res.problem("took %s, over its limit of %s", res.Elapsed.Round(time.Second), sc.Limit)
	}
	return res
}

// deadline is a step-bounded clock for a scenario: expired says when to stop early.
type deadline time.Time

func (d deadline) expired() bool { return time.Now().After(time.Time(d)) }

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}
