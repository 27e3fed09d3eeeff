// Command pfebench measures prosody-pfe's promises (init overhead, memory,
// signal forwarding, time to ready, with a mounted certificate and with
// ACME, reload latency, /readyz under load,
// healthcheck cost, render time) and writes BENCHMARKS.md with SVG figures.
// bench/run builds and runs it; see BENCHMARKS.md for what each figure means.
//
//	pfebench [-quick] [-only exec,earlyterm,rss,signal,ready,acme,reload,load,healthcheck,render]
//	         -root REPO -entrypoint BIN [-md FILE] [-figures DIR]
//	pfebench sigchild        (internal: the child of the forwarding benchmark)
//	pfebench load -url URL   (internal: the /readyz load generator)
//
// It must run as root on Linux (Prosody is dropped to the prosody user) and
// listens only on 127.0.0.1, on ports picked free at run time.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "sigchild":
			os.Exit(runSigChild())
		case "load":
			os.Exit(runLoad(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// bench holds one run's settings and what it has measured so far.
type bench struct {
	quick      bool
	root       string // the repository
	configDir  string // the repository's config/ tree
	entrypoint string
	self       string // this binary, the signal child and load generator
	goFloor    string // bench/gofloor, the Go floor beside tini; "" when not given
	tini       string
	dumbInit   string
	wrk        string // "" when wrk is not installed: the Go client alone
	figDir     string
	log        io.Writer
	report     Report
	checkStage string // median of the check stage at start-up, once measured ("not measured" before)
	scrapeRows string // the RSS-after-scrapes table, once measured
}

// n picks the repetition count for a full or a quick run.
func (b *bench) n(full, quick int) int {
	if b.quick {
		return quick
	}
	return full
}

func (b *bench) figure(f Figure) { b.report.Figures = append(b.report.Figures, f) }

func (b *bench) section(title, body string) {
	b.report.Sections = append(b.report.Sections, Section{Title: title, Body: body})
}

func (b *bench) note(format string, args ...any) {
	b.report.Notes = append(b.report.Notes, fmt.Sprintf(format, args...))
}

func (b *bench) chart(name string, c Chart) error {
	return c.Write(filepath.Join(b.figDir, name))
}

var allMeasures = []string{"exec", "earlyterm", "rss", "signal", "ready", "acme", "reload", "load", "healthcheck", "render"}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pfebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "few repetitions: checks that every measurement works (CI)")
	only := fs.String("only", strings.Join(allMeasures, ","), "comma-separated measurements to run")
	root := fs.String("root", ".", "the repository (config/ and pkg/ are read from it)")
	ep := fs.String("entrypoint", "dist/entrypoint", "the entrypoint binary to measure (make static-host: the binary the image ships)")
	md := fs.String("md", "", "write the report here (default ROOT/BENCHMARKS.md)")
	figs := fs.String("figures", "", "write SVG figures here (default ROOT/bench/figures)")
	goFloor := fs.String("gofloor", "", "bench/gofloor binary: the Go floor of exec overhead (bench/run builds it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	b, err := newBench(*quick, *root, *ep, *figs, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pfebench: %v\n", err)
		return 1
	}
	b.goFloor = *goFloor
	want := strings.Split(*only, ",")
	for _, w := range want {
		if !slices.Contains(allMeasures, w) {
			fmt.Fprintf(stderr, "pfebench: -only %q: unknown measurement (have %s)\n", w, strings.Join(allMeasures, ", "))
			return 2
		}
	}
	if err := b.measure(want); err != nil {
		fmt.Fprintf(stderr, "pfebench: %v\n", err)
		return 1
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.report.Machine += "\n| load average at end | " + strings.Join(strings.Fields(string(load))[:3], " ") + " |"
	}
	if *md == "" {
		*md = filepath.Join(b.root, "BENCHMARKS.md")
	}
	prev, err := os.ReadFile(*md)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintf(stderr, "pfebench: read %s: %v\n", *md, err)
		return 1
	}
	doc := b.report.Markdown(string(prev))
	if err := os.WriteFile(*md, []byte(doc), 0o644); err != nil {
		fmt.Fprintf(stderr, "pfebench: write report: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "pfebench: wrote %s\n", *md)
	return 0
}

func newBench(quick bool, root, ep, figs string, log io.Writer) (*bench, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("run as root: Prosody runs as the prosody user, which needs root to switch to")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	b := &bench{checkStage: "not measured in this run", quick: quick, root: abs, configDir: filepath.Join(abs, "config"), log: log, figDir: figs}
	if b.figDir == "" {
		b.figDir = filepath.Join(abs, "bench", "figures")
	}
	if err := os.MkdirAll(b.figDir, 0o755); err != nil {
		return nil, fmt.Errorf("figures directory: %w", err)
	}
	if b.entrypoint, err = filepath.Abs(ep); err != nil {
		return nil, err
	}
	if _, err := os.Stat(b.entrypoint); err != nil {
		return nil, fmt.Errorf("entrypoint binary: %w (build it with make static-host)", err)
	}
	if b.self, err = os.Executable(); err != nil {
		return nil, err
	}
	// tini-static is what Docker's --init runs, and like the entrypoint's shipped
	// binary it is static: the like-for-like comparison. Plain tini otherwise.
	tini := "tini"
	if _, err := exec.LookPath("tini-static"); err == nil {
		tini = "tini-static"
	}
	for _, need := range []struct {
		dst      *string
		bin, pkg string
	}{{&b.tini, tini, "tini"}, {&b.dumbInit, "dumb-init", "dumb-init"}} {
		if *need.dst, err = exec.LookPath(need.bin); err != nil {
			return nil, fmt.Errorf("%s not found: install Debian package %s (scripts/install-deps test)", need.bin, need.pkg)
		}
	}
	for _, bin := range []string{"prosody", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found: install Debian package %s (scripts/install-deps test)", bin, bin)
		}
	}
	b.wrk, _ = exec.LookPath("wrk")
	b.report.Quick = quick
	b.report.Machine = machine(b.versions())
	return b, nil
}

// versions names what was measured, for the machine table.
func (b *bench) versions() map[string]string {
	v := map[string]string{"Go": runtime.Version(), "date": time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "unknown"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	v["entrypoint"] = first(b.entrypoint, "version")
	v["prosody"] = first("dpkg-query", "-W", "-f", "${Version}", "prosody")
	v["tini"] = filepath.Base(b.tini) + ": " + first(b.tini, "--version")
	v["dumb-init"] = first(b.dumbInit, "--version")
	if b.wrk != "" {
		v["wrk"] = first("dpkg-query", "-W", "-f", "${Version}", "wrk")
	} else {
		v["wrk"] = "not installed: the Go load client alone"
	}
	return v
}

// measure runs the selected measurements in a fixed order. The ones that need a
// running server share one.
func (b *bench) measure(want []string) error {
	has := func(m string) bool { return slices.Contains(want, m) }
	step := func(name string, f func() error) error {
		if !has(name) {
			return nil
		}
		t0 := time.Now()
		fmt.Fprintf(b.log, "pfebench: %s…\n", name)
		if err := f(); err != nil {
			return err
		}
		fmt.Fprintf(b.log, "pfebench: %s done in %s\n", name, time.Since(t0).Round(time.Millisecond))
		return nil
	}
	for _, m := range []struct {
		name string
		f    func() error
	}{{"exec", b.measureExec}, {"earlyterm", b.measureEarlyTerm}, {"rss", b.measureRSS}, {"signal", b.measureSignal}, {"ready", b.measureReady}, {"acme", b.measureACME}} {
		if err := step(m.name, m.f); err != nil {
			return err
		}
	}
	if has("reload") || has("load") || has("healthcheck") {
		s, err := b.startBenchServer()
		if err != nil {
			return fmt.Errorf("start the server for reload, load and healthcheck: %w", err)
		}
		defer s.remove()
		for _, m := range []struct {
			name string
			f    func(*server) error
		}{{"reload", b.measureReload}, {"load", b.measureLoad}, {"healthcheck", b.measureHealthcheck}} {
			if err := step(m.name, func() error { return m.f(s) }); err != nil {
				_ = s.stop()
				return err
			}
		}
		if err := s.stop(); err != nil {
			return err
		}
	}
	return step("render", b.measureRender)
}

// measureRender runs the Go benchmark of plan + render per profile (and, in a
// full run, every Go benchmark of the packages) through `go test`.
func (b *bench) measureRender() error {
	args := []string{"test", "-run", "^$", "-bench", "^Benchmark(PlanRender|ReloadRender)$", "-benchtime", "20x", "-count", "1", "./pkg/luacfg"}
	if !b.quick {
		args = []string{"test", "-run", "^$", "-bench", ".", "-count", "5", "./pkg/..."}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "go", args...)
	c.Dir = b.root
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("render: go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	res := parseGoBench(out.String())
	var profiles []string
	for name := range res {
		if p, ok := strings.CutPrefix(name, "BenchmarkPlanRender/"); ok {
			profiles = append(profiles, p)
		}
	}
	if len(profiles) == 0 {
		return fmt.Errorf("render: no BenchmarkPlanRender results in:\n%s", out.String())
	}
	slices.Sort(profiles)
	var rows strings.Builder
	rows.WriteString("| profile | plan + render (median) | max | tree load + plan + render, as a reload does (median) |\n|---|---|---|---|\n")
	chart := Chart{Title: "plan + render time per profile (production environment)", Unit: "ms", Target: 2, TargetTxt: "target 2 ms"}
	for _, p := range profiles {
		s := res["BenchmarkPlanRender/"+p]
		fmt.Fprintf(&rows, "| %s | %s | %s | %s |\n", p, ms(s.Median()), ms(s.Max()), ms(res["BenchmarkReloadRender/"+p].Median()))
		chart.Bars = append(chart.Bars, Bar{Label: p, Value: msf(s.Median()), Text: ms(s.Median())})
		if p == "enterprise" {
			b.figure(Figure{What: "plan + render, enterprise profile", Result: ms(s.Median()), Target: "≤ 2 ms",
				Verdict: verdict(s.Median() <= 2*time.Millisecond), Command: "bench/run --only render"})
		}
	}
	if err := b.chart("render.svg", chart); err != nil {
		return err
	}
	body := "In-process Go benchmarks of pkg/luacfg: `BenchmarkPlanRender` loads the PFE tree once, then plans and\nrenders per profile; `BenchmarkReloadRender` also reads the tree from disk each time, as every reload does.\nReproduce: `go " + strings.Join(args, " ") + "`.\n\n" + rows.String() +
		"\n![render time](bench/figures/render.svg)\n"
	if !b.quick {
		var all strings.Builder
		all.WriteString("| benchmark | median per op | max | runs |\n|---|---|---|---|\n")
		names := sortedKeys(res)
		for _, n := range names {
			all.WriteString(benchLine(n, res[n]) + "\n")
		}
		body += "\nEvery Go benchmark of the packages, same run (medians of -count 5):\n\n" + all.String()
	}
	b.section("Render time and Go benchmarks", body)
	return nil
}
