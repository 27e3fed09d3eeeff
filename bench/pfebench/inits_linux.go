package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initCmd is one way to run a command under an init: the argv prefix that
// precedes the command, and extra environment.
type initCmd struct {
	Name   string
	Prefix []string // empty: the command runs directly
	Env    []string
	// NoChild: run Prefix alone (no `true` after it); WantCode is its exit code.
	NoChild  bool
	WantCode int
}

// inits are the compared inits, like for like: every one gets the same
// environment (the entrypoint's health server off, as tini and dumb-init have
// none) and none runs behind a wrapper. The entrypoint comes last.
func (b *bench) inits(withDirect bool) []initCmd {
	env := []string{"PROSODY_HEALTH_LISTEN=off"}
	var out []initCmd
	if withDirect {
		out = append(out, initCmd{Name: "no init", Env: env})
	}
	return append(out,
		initCmd{Name: "tini", Prefix: []string{b.tini, "--"}, Env: env},
		initCmd{Name: "dumb-init", Prefix: []string{b.dumbInit, "--"}, Env: env},
		initCmd{Name: "entrypoint", Prefix: []string{b.entrypoint, "--"}, Env: env},
	)
}

func (b *bench) command(ic initCmd, argv ...string) *exec.Cmd {
	full := append(append([]string{}, ic.Prefix...), argv...)
	c := exec.Command(full[0], full[1:]...)
	c.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PROSODY_LOG_FORMAT=json"}, ic.Env...)
	return c
}

// measureExec times `INIT -- true` for each init, interleaved run by run.
func (b *bench) measureExec() error {
	inits := b.inits(true)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort())
	inits = append(inits, initCmd{Name: "entrypoint + health server", Prefix: []string{b.entrypoint, "--"},
		Env: []string{"PROSODY_HEALTH_LISTEN=" + listen}})
	// The Go floor: a throwaway Go init linking the same four libraries.
	if b.goFloor != "" {
		inits = append(inits, initCmd{Name: "Go floor: gofloor (same 4 libraries, no logic)", Prefix: []string{b.goFloor, "--"},
			Env: []string{"PROSODY_HEALTH_LISTEN=off"}})
	}
	// `entrypoint version` starts no child: the floor set by the Go runtime,
	// loading the binary and package initialisation.
	inits = append(inits, initCmd{Name: "entrypoint version (no child)", Prefix: []string{b.entrypoint, "version"}, NoChild: true})
	// A bad environment must be refused (exit 78) before anything starts; the
	// settings issue asks for that within 100 ms.
	inits = append(inits, initCmd{Name: "entrypoint, bad environment (exit 78)", Prefix: []string{b.entrypoint},
		Env: []string{"PROSODY_STORAGE=mysql", "PROSODY_C2S_PORT=99999", "PROSODY_PROFLE=standard"}, NoChild: true, WantCode: 78})
	samples := make([]Sample, len(inits))
	truePath, err := exec.LookPath("true")
	if err != nil {
		return fmt.Errorf("exec overhead: find true: %w", err)
	}
	runs, warm := b.n(300, 40), 10
	for i := -warm; i < runs; i++ {
		for j := range inits {
			k := (i + j + warm) % len(inits) // rotate the order so none always runs first
			argv := []string{truePath}
			if inits[k].NoChild {
				argv = nil
			}
			c := b.command(inits[k], argv...)
			t0 := time.Now()
			err := c.Run()
			if code := c.ProcessState.ExitCode(); code != inits[k].WantCode || (err != nil && inits[k].WantCode == 0) {
				return fmt.Errorf("exec overhead: %s: exit %d, want %d: %v", inits[k].Name, code, inits[k].WantCode, err)
			}
			if i >= 0 {
				samples[k] = append(samples[k], time.Since(t0))
			}
		}
	}
	tini := samples[1].Median()
	var rows strings.Builder
	rows.WriteString("| init | median | p10 | p90 | ratio to tini |\n|---|---|---|---|---|\n")
	chart := Chart{Title: fmt.Sprintf("exec overhead: INIT -- true, median and p90 of %d runs", runs), Unit: "ms"}
	for k, ic := range inits {
		s := samples[k]
		fmt.Fprintf(&rows, "| %s | %s | %s | %s | %.2f |\n", ic.Name, ms(s.Median()), ms(s.Quantile(0.1)), ms(s.Quantile(0.9)), ratio(s.Median(), tini))
		chart.Bars = append(chart.Bars, Bar{Label: ic.Name, Value: msf(s.Median()), Low: msf(s.Median()), High: msf(s.Quantile(0.9)),
			Text: fmt.Sprintf("%s (%.2f× tini)", ms(s.Median()), ratio(s.Median(), tini))})
	}
	r := ratio(samples[3].Median(), tini)
	floorTxt, v := "", verdict(r <= 3.3)
	if b.goFloor != "" {
		f := samples[5].Median()
		overFloor := ratio(samples[3].Median(), f)
		floorTxt = fmt.Sprintf("; Go floor (bench/gofloor) %.2f× (%s); entrypoint / floor %.2f×", ratio(f, tini), ms(f), overFloor)
		// The target is "at the floor of a Go binary linking the same four libraries"; 3.3× is
		// the floor the issue measured on its machine. Where this run's floor is above
		// 3.3×, being within 5% of it is "at the floor", and the verdict says which.
		if r > 3.3 && overFloor <= 1.05 {
			v = "at the floor (3.3× is below this machine's Go floor)"
		}
	}
	b.figure(Figure{What: "exec overhead `entrypoint -- true` / `tini -- true`, like for like", Result: fmt.Sprintf("%.2f× (%s vs %s)%s", r, ms(samples[3].Median()), ms(tini), floorTxt),
		Target: "≤ 3.3×, the Go floor beside it", Verdict: v, Command: "bench/run --only exec"})
	bad := samples[len(samples)-1].Median()
	b.figure(Figure{What: "a bad environment refused, every problem printed, exit 78", Result: ms(bad),
		Target: "≤ 100 ms", Verdict: verdict(bad <= 100*time.Millisecond), Command: "bench/run --only exec"})
	if floor := samples[len(samples)-2].Median(); r > 3.3 {
		b.note(`Exec overhead: `+"`entrypoint version`"+`, which starts no child, already takes %s (%.1f× tini): the floor is
faulting in a %s binary and package initialisation, not the Go runtime (a static hello-world starts as fast as
tini). `+"`GODEBUG=inittrace=1 dist/entrypoint version`"+` sums to ~2.5 ms of init: earlysignal's five synchronous
registrations (~0.5 ms: each is a round trip to the runtime's signal-mask thread; the other 53 run in a goroutine
beside the other inits), client_golang (~0.55 ms: its default registry's process and Go collectors),
procfs, protobuf (timestamppb, detrand) and lego's DNS resolver config (~0.5 ms together); the product's own
packages compile nothing at init. All of that is in the four libraries and lego, which stay, and in one binary
every linked package initialises whatever the command. Supervising `+"`true`"+` adds %s on top (settings, logger,
fork+exec, the child's own run). bench/run times the static binary the image ships (`+"`make static-host`"+`),
against tini-static (what Docker's --init runs), both without a dynamic loader.`, ms(floor), ratio(floor, tini), binSize(b.entrypoint), ms(samples[3].Median()-floor))
	}
	if err := b.chart("exec-overhead.svg", chart); err != nil {
		return err
	}
	b.section("Exec overhead", fmt.Sprintf(`Wall time of fork+exec of the init, which starts %s, waits for it and exits; %d interleaved
runs after %d warm-up rounds, timed from the benchmark process (so process creation of the
init itself is included, as a container runtime would see it). "entrypoint" runs with
PROSODY_HEALTH_LISTEN=off, like tini and dumb-init, which have no health server, and every init gets
the same environment with no wrapper; then the default plain-init mode with its HTTP server on
loopback; "Go floor" is bench/gofloor, a throwaway Go init built by bench/run (never shipped) that links
the same four libraries (envconfig, client_golang, zap, fsnotify) and only registers signals, execs
its argument, forwards signals and waits: no Go init linking them starts faster; `+"`entrypoint version`"+`
starts no child at all and shows the start-up floor of the Go binary; the last row is the
Prosody pipeline given three bad variables: it must print every problem and exit 78.

%s
![exec overhead](bench/figures/exec-overhead.svg)

Cross-check with hyperfine: `+"`PROSODY_HEALTH_LISTEN=off hyperfine -N --warmup 20 'tini-static -- true' 'dumb-init -- true' 'dist/entrypoint -- true'`"+` (the variable exported for all, no `+"`env`"+` wrapper for one side).`,
		"`true`", runs, warm, rows.String()))
	return nil
}

// binSize is a file's size in MiB, for notes.
func binSize(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20))
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procStatusKB reads a "VmRSS:"-style field of /proc/PID/status in KiB.
func procStatusKB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[0])
		}
	}
	return 0, fmt.Errorf("pid %d: no %s in /proc status", pid, field)
}

// hasChild reports whether pid has at least one child process. Each thread
// lists the children it forked, so every thread of a Go process is read.
func hasChild(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		if b, err := os.ReadFile(t); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return true
		}
	}
	return false
}

// measureRSS reads VmRSS of each init while it supervises an idle `sleep`.
func (b *bench) measureRSS() error {
	listen := fmt.Sprintf("127.0.0.1:%d", freePort())
	inits := append(b.inits(false), initCmd{Name: "entrypoint + health server", Prefix: []string{b.entrypoint, "--"},
		Env: []string{"PROSODY_HEALTH_LISTEN=" + listen}})
	var rows strings.Builder
	rows.WriteString("| init | VmRSS median of samples | VmHWM (peak) |\n|---|---|---|\n")
	var epRSS int
	for k, ic := range inits {
		c := b.command(ic, "sleep", "600")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			return fmt.Errorf("idle rss: start %s: %w", ic.Name, err)
		}
		pid := c.Process.Pid
		stop := func() { _ = syscall.Kill(-pid, syscall.SIGKILL); _ = c.Wait() }
		if err := waitFor(5*time.Second, ic.Name+" to start sleep", func() bool { return hasChild(pid) }); err != nil {
			stop()
			return fmt.Errorf("idle rss: %w", err)
		}
		if k == len(inits)-1 {
			url := "http://" + listen + "/livez"
			if err := waitFor(5*time.Second, "/livez 200", func() bool { return httpOK(url) }); err != nil {
				stop()
				return fmt.Errorf("idle rss: %w", err)
			}
		}
		// Idle means after start-up: sample for a second, then take the median.
		var rss []int
		for i := 0; i < 10; i++ {
			time.Sleep(100 * time.Millisecond) // sampling period, not a wait for a condition
			v, err := procStatusKB(pid, "VmRSS")
			if err != nil {
				stop()
				return fmt.Errorf("idle rss: %s: %w", ic.Name, err)
			}
			rss = append(rss, v)
		}
		if ic.Name == "entrypoint + health server" {
			if err := b.scrapeRSS(pid, "http://"+listen+"/metrics"); err != nil {
				stop()
				return fmt.Errorf("rss after scrapes: %w", err)
			}
		}
		hwm, err := procStatusKB(pid, "VmHWM")
		stop()
		if err != nil {
			return fmt.Errorf("idle rss: %s: %w", ic.Name, err)
		}
		med := medianInt(rss)
		if ic.Name == "entrypoint + health server" {
			epRSS = med
		}
		fmt.Fprintf(&rows, "| %s | %.1f MiB | %.1f MiB |\n", ic.Name, float64(med)/1024, float64(hwm)/1024)
	}
	b.figure(Figure{What: "idle RSS of the entrypoint supervising `sleep` (health server on)", Result: fmt.Sprintf("%.1f MiB", float64(epRSS)/1024),
		Target: "≤ 8 MiB", Verdict: verdict(epRSS <= 8*1024), Command: "bench/run --only rss"})
	if epRSS > 8*1024 {
		b.note(`Idle RSS: the entrypoint's %.1f MiB is mostly the Go runtime and the mapped pages of its own binary
(the plain-init row without the health server is close to it); tini and dumb-init are C programs of a few
dozen KiB. Not reducible from bench/: it needs a smaller binary or fewer linked packages in plain mode.`, float64(epRSS)/1024)
	}
	b.section("Idle RSS", `VmRSS from /proc/PID/status of the init process alone (not its child), sampled ten times over
one second once the child runs (and, for the entrypoint with its health server, once /livez
answers). VmHWM is the peak resident size since start.

`+rows.String()+"\n"+b.scrapeRows)
	return nil
}

// scrapeRSS scrapes url (the entrypoint's /metrics) 1,000 times (100 quick),
// one request after another on one keep-alive connection, and records
// RssAnon (the process's own memory), RssFile and VmRSS before, right after,
// and at rest (3 s after the last scrape: the entrypoint returns a burst's
// heap to the OS one health.ScrapeReleaseDelay after it), to show whether
// serving metrics grows the process.
func (b *bench) scrapeRSS(pid int, url string) error {
	type mem struct{ anon, file, rss int }
	read := func() (m mem, err error) {
		if m.anon, err = procStatusKB(pid, "RssAnon"); err != nil {
			return m, err
		}
		if m.file, err = procStatusKB(pid, "RssFile"); err != nil {
			return m, err
		}
		m.rss, err = procStatusKB(pid, "VmRSS")
		return m, err
	}
	idle, err := read()
	if err != nil {
		return err
	}
	n := b.n(1000, 100)
	c := http.Client{Timeout: 5 * time.Second}
	for i := 0; i < n; i++ {
		resp, err := c.Get(url)
		if err != nil {
			return fmt.Errorf("scrape %d of %s: %w", i+1, url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("scrape %d of %s: status %d", i+1, url, resp.StatusCode)
		}
	}
	c.CloseIdleConnections()
	after, err := read()
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the quiet period under test, not a wait for a condition
	rest, err := read()
	if err != nil {
		return err
	}
	row := func(name string, m mem) string {
		return fmt.Sprintf("| %s | %.1f MiB | %.1f MiB | %.1f MiB |\n", name, mib(m.anon), mib(m.file), mib(m.rss))
	}
	b.scrapeRows = fmt.Sprintf(`Memory of the entrypoint (health server on) before and after %d scrapes of /metrics, one after
another on a keep-alive connection (the Go client, which asks for gzip, as Prometheus does).
RssAnon is the process's own memory (heap, stacks, runtime metadata); RssFile the pages of its
%s binary that it touched (clean, shared with the page cache, reclaimable); VmRSS is both.
"At rest" is 3 s after the last scrape: the entrypoint returns the heap a burst of scrapes grew
to the OS 1 s after it (pkg/health releaseLoop).

| | RssAnon | RssFile | VmRSS |
|---|---|---|---|
`, n, binSize(b.entrypoint)) + row("idle, before", idle) + row(fmt.Sprintf("right after %d scrapes", n), after) + row("at rest, 3 s later", rest)
	b.figure(Figure{What: fmt.Sprintf("entrypoint memory at rest after %d /metrics scrapes: RssAnon, VmRSS", n),
		Result: fmt.Sprintf("%.1f MiB, %.1f MiB (idle %.1f, %.1f; right after the scrapes %.1f, %.1f)", mib(rest.anon), mib(rest.rss), mib(idle.anon), mib(idle.rss), mib(after.anon), mib(after.rss)),
		Target: "RssAnon ≤ 2 MiB, VmRSS ≤ 10 MiB", Verdict: verdict(rest.anon <= 2*1024 && rest.rss <= 10*1024), Command: "bench/run --only rss"})
	if rest.anon > 2*1024 || rest.rss > 10*1024 {
		b.note(`/metrics memory: RssAnon %.1f MiB idle, %.1f MiB right after %d scrapes, %.1f MiB at rest. Each scrape leaves ~250 KiB of garbage (the process and Go collectors
read /proc and runtime statistics, Gather builds every family, the encoder writes it); the Go GC lets the heap
grow to its 4 MiB minimum goal before collecting, and then keeps those pages until its scavenger returns them.
The entrypoint now returns them 1 s after a scrape. What stays is the runtime's floor once its GC has run at
all: the collector's own metadata (mark bits, work buffers: /memory/classes/metadata/other grows from 1.4 to
~3 MiB at the first collection) and span fragmentation. RssAnon ≤ 2 MiB holds only until the first GC;
lower GOGC or a GOMEMLIMIT trade /readyz throughput for it (docs/operations.md has the measurements).
VmRSS ≤ 10 MiB cannot hold with a %s binary: RssFile alone is %.1f MiB idle (clean pages of the binary the
runtime touches: code, pclntab for stack scans, type data), reclaimable by the kernel and shared between
processes of the same image; only a smaller binary would lower it.`,
			mib(idle.anon), mib(after.anon), n, mib(rest.anon), binSize(b.entrypoint), mib(idle.file))
	}
	return nil
}

func mib(kb int) float64 { return float64(kb) / 1024 }

func medianInt(v []int) int {
	s := make(Sample, len(v))
	for i, x := range v {
		s[i] = time.Duration(x)
	}
	return int(s.Median())
}

func httpOK(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// monotonicNS is CLOCK_MONOTONIC in nanoseconds: one clock for every process on
// the machine, so a sender and a receiver can compare timestamps.
func monotonicNS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// runSigChild is the child of the forwarding benchmark: it says "ready", then
// prints the CLOCK_MONOTONIC time at which SIGTERM reached it, and exits 0.
func runSigChild() int {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	fmt.Println("ready")
	<-ch
	fmt.Printf("got %d\n", monotonicNS())
	return 0
}

// measureSignal sends SIGTERM to each init whose child is runSigChild and
// measures the time until the child has it.
func (b *bench) measureSignal() error {
	inits := b.inits(true)
	samples := make([]Sample, len(inits))
	runs := b.n(200, 30)
	for i := 0; i < runs; i++ {
		for j := range inits {
			k := (i + j) % len(inits)
			d, err := b.forwardOnce(inits[k])
			if err != nil {
				return fmt.Errorf("signal forwarding via %s: %w", inits[k].Name, err)
			}
			samples[k] = append(samples[k], d)
		}
	}
	var rows strings.Builder
	rows.WriteString("| init | p50 | p99 | max |\n|---|---|---|---|\n")
	chart := Chart{Title: fmt.Sprintf("SIGTERM forwarding latency, p50 and p99 of %d runs", runs), Unit: "ms", Target: 1, TargetTxt: "target p99 1 ms"}
	for k, ic := range inits {
		s := samples[k]
		fmt.Fprintf(&rows, "| %s | %s | %s | %s |\n", ic.Name, ms(s.Median()), ms(s.Quantile(0.99)), ms(s.Max()))
		chart.Bars = append(chart.Bars, Bar{Label: ic.Name, Value: msf(s.Median()), Low: msf(s.Median()), High: msf(s.Quantile(0.99)),
			Text: fmt.Sprintf("p50 %s, p99 %s", ms(s.Median()), ms(s.Quantile(0.99)))})
	}
	ep := samples[len(samples)-1]
	b.figure(Figure{What: "SIGTERM forwarding latency through the entrypoint", Result: fmt.Sprintf("p50 %s, p99 %s", ms(ep.Median()), ms(ep.Quantile(0.99))),
		Target: "p99 ≤ 1 ms", Verdict: verdict(ep.Quantile(0.99) <= time.Millisecond), Command: "bench/run --only signal"})
	if ep.Quantile(0.99) > time.Millisecond {
		load, _ := os.ReadFile("/proc/loadavg")
		b.note(`SIGTERM forwarding: the entrypoint's p99 is %s against tini's %s and dumb-init's %s in the same
interleaved runs, with p50 %s (no init: %s). The tail follows the machine's load (load average at the end
of this measurement: %s) for every init alike; the entrypoint forwards from a Go goroutine, which adds one
scheduling hop that a loaded 2-CPU machine can delay. On an idle machine rerun `+"`bench/run --only signal`"+`.`,
			ms(ep.Quantile(0.99)), ms(samples[1].Quantile(0.99)), ms(samples[2].Quantile(0.99)), ms(ep.Median()), ms(samples[0].Median()),
			strings.Join(strings.Fields(string(load))[:3], " "))
	}
	if err := b.chart("signal-forwarding.svg", chart); err != nil {
		return err
	}
	b.section("SIGTERM forwarding latency", fmt.Sprintf(`The child is this benchmark's own binary (`+"`pfebench sigchild`"+`): it installs a SIGTERM handler, prints
"ready", and on the signal prints the CLOCK_MONOTONIC time it received it. The benchmark reads
"ready", takes CLOCK_MONOTONIC, sends SIGTERM to the init and subtracts. "no init" signals the
child directly: the floor (signal delivery plus the Go runtime handing the signal to a channel).
%d runs per init, interleaved.

%s
![forwarding latency](bench/figures/signal-forwarding.svg)`, runs, rows.String()))
	return nil
}

// forwardOnce runs one forwarding measurement through ic.
func (b *bench) forwardOnce(ic initCmd) (time.Duration, error) {
	c := b.command(ic, b.self, "sigchild")
	out, err := c.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := c.Start(); err != nil {
		return 0, err
	}
	r := bufio.NewReader(out)
	lines := make(chan string, 2)
	readerDone := make(chan struct{})
	// The reader ends when Wait closes the pipe; this function waits for both.
	defer func() { _ = c.Process.Kill(); _ = c.Wait(); <-readerDone }()
	go func() {
		defer close(readerDone)
		defer close(lines)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case lines <- strings.TrimSpace(l):
			default: // nobody listens any more; keep draining
			}
		}
	}()
	next := func() (string, error) {
		select {
		case l, ok := <-lines:
			if !ok {
				return "", fmt.Errorf("child output ended early")
			}
			return l, nil
		case <-time.After(5 * time.Second):
			return "", fmt.Errorf("no answer from the child within 5s")
		}
	}
	if l, err := next(); err != nil || l != "ready" {
		return 0, fmt.Errorf("child did not say ready (%q): %v", l, err)
	}
	sent := monotonicNS()
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	l, err := next()
	if err != nil {
		return 0, err
	}
	v, ok := strings.CutPrefix(l, "got ")
	got, perr := strconv.ParseInt(v, 10, 64)
	if !ok || perr != nil {
		return 0, fmt.Errorf("child answered %q, want \"got NS\"", l)
	}
	if err := c.Wait(); err != nil {
		return 0, fmt.Errorf("after SIGTERM: %w", err)
	}
	return time.Duration(got - sent), nil
}
