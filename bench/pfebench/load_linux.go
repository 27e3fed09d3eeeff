package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// probeCount is how many readiness probes the entrypoint has sent Prosody.
const probeCount = "prosody_pfe_probe_duration_seconds_count"

// The entrypoint's Go runtime counters read around a load run: collections,
// their total stop-the-world pause, and bytes allocated.
const (
	gcCount    = "go_gc_duration_seconds_count"
	gcPause    = "go_gc_duration_seconds_sum"
	allocBytes = "go_memstats_alloc_bytes_total"
)

// gcStats reads the entrypoint's runtime counters (gcCount, gcPause, allocBytes).
func gcStats(s *server) (v [3]float64, err error) {
	for i, name := range []string{gcCount, gcPause, allocBytes} {
		if v[i], err = s.metric(name); err != nil {
			return v, err
		}
	}
	return v, nil
}

// measureLoad drives /readyz from a second process (wrk when installed, and
// this binary's Go client) and counts the probes Prosody saw meanwhile.
func (b *bench) measureLoad(s *server) error {
	dur := time.Duration(b.n(5, 2)) * time.Second
	conns := 32
	url := s.url("/readyz")
	type run struct {
		res    loadResult
		probes float64
		gc     [3]float64 // change of gcStats during the run
	}
	var runs []run
	tools := []string{"go"}
	if b.wrk != "" {
		tools = []string{"wrk", "go"}
		if nproc() >= 2 {
			// The same wrk run with the two sides on separate CPUs: what is left of the
			// tail when the load generator no longer competes with the server.
			tools = append(tools, "wrk-pinned")
		}
	}
	for _, tool := range tools {
		before, err := s.metric(probeCount)
		if err != nil {
			return fmt.Errorf("readyz load: %w", err)
		}
		gcBefore, err := gcStats(s)
		if err != nil {
			return fmt.Errorf("readyz load: %w", err)
		}
		var c *exec.Cmd
		ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
		restore := func() error { return nil }
		switch tool {
		case "wrk":
			c = exec.CommandContext(ctx, b.wrk, "-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(dur.Seconds())), "--latency", url)
		case "wrk-pinned":
			if restore, err = pin(s.cmd.Process.Pid, "0"); err != nil {
				cancel()
				return fmt.Errorf("readyz load: %w", err)
			}
			c = exec.CommandContext(ctx, "taskset", "-c", "1", b.wrk, "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(dur.Seconds())), "--latency", url)
		default:
			c = exec.CommandContext(ctx, b.self, "load", "-url", url, "-c", fmt.Sprint(conns), "-d", dur.String())
		}
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		err = c.Run()
		cancel()
		if rerr := restore(); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("readyz load: %s: %w: %s", tool, err, errb.String())
		}
		var res loadResult
		if tool != "go" {
			if res, err = parseWrk(out.String()); err != nil {
				return fmt.Errorf("readyz load: %w", err)
			}
			if tool == "wrk-pinned" {
				res.Tool = "wrk -t1 on CPU 1, the entrypoint on CPU 0"
			}
		} else if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			return fmt.Errorf("readyz load: decode the load client's result: %w: %s", err, out.String())
		}
		if res.Requests == 0 || res.Errors > 0 {
			return fmt.Errorf("readyz load: %s: %d requests, %d errors (want every answer 200)", tool, res.Requests, res.Errors)
		}
		after, err := s.metric(probeCount)
		if err != nil {
			return fmt.Errorf("readyz load: %w", err)
		}
		gcAfter, err := gcStats(s)
		if err != nil {
			return fmt.Errorf("readyz load: %w", err)
		}
		var gc [3]float64
		for i := range gc {
			gc[i] = gcAfter[i] - gcBefore[i]
		}
		runs = append(runs, run{res, after - before, gc})
	}
	primary := runs[0].res
	pgc := runs[0].gc
	var gcPerSec, pauseMS, bytesPerReq float64
	if primary.Elapsed > 0 {
		gcPerSec = pgc[0] / primary.Elapsed.Seconds()
	}
	if pgc[0] > 0 {
		pauseMS = pgc[1] / pgc[0] * 1000
	}
	if primary.Requests > 0 {
		bytesPerReq = pgc[2] / float64(primary.Requests)
	}
	b.figure(Figure{What: "/readyz throughput under load (" + primary.Tool + ", 32 connections)", Result: fmt.Sprintf("%.0f req/s", primary.rate()),
		Target: "≥ 20000 req/s", Verdict: verdict(primary.rate() >= 20000), Command: "bench/run --only load"})
	b.figure(Figure{What: "/readyz p99 latency under that load", Result: ms(primary.P99),
		Target: "≤ 5 ms", Verdict: verdict(primary.P99 <= 5*time.Millisecond), Command: "bench/run --only load"})
	pinnedTxt := "A run on an idle machine, or with the load pinned to other cores, separates the two."
	if last := runs[len(runs)-1].res; tools[len(tools)-1] == "wrk-pinned" {
		pinnedTxt = fmt.Sprintf("With wrk on CPU 1 and the entrypoint on CPU 0 (taskset), the same load gives p99 %s at %.0f req/s.", ms(last.P99), last.rate())
	}
	if primary.P99 > 5*time.Millisecond {
		load, _ := os.ReadFile("/proc/loadavg")
		b.note(`/readyz p99: %s with %s. The load generator and the server share %d CPUs (load average during the run: %s),
and the tail is not the handler: p50 is %s, and the handler answers from bodies rendered at
each state change with no allocation (~80 ns: `+"`go test -run '^$' -bench ProbeHandlers ./pkg/health/`"+`; TestProbeHandlersDoNotAllocate).
What the server still allocates per request is net/http's own (connection read, request, header map):
%.0f bytes a request during the run (go_memstats_alloc_bytes_total over requests), which at this rate
made %.0f GC cycles a second (go_gc_duration_seconds_count; 4 MiB minimum goal), with a mean
stop-the-world pause of %.2f ms each: the tail is those pauses and the wait for a CPU. %s`, ms(primary.P99), primary.Tool, nproc(), strings.Join(strings.Fields(string(load))[:3], " "), ms(primary.P50),
			bytesPerReq, gcPerSec, pauseMS, pinnedTxt)
	}
	var rows strings.Builder
	rows.WriteString("| load generator | requests | req/s | p50 | p99 | probes Prosody saw | GC cycles/s | allocated/request |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range runs {
		fmt.Fprintf(&rows, "| %s | %d | %.0f | %s | %s | %.0f | %.0f | %.0f B |\n", r.res.Tool, r.res.Requests, r.res.rate(), ms(r.res.P50), ms(r.res.P99), r.probes,
			r.gc[0]/r.res.Elapsed.Seconds(), r.gc[2]/float64(max(r.res.Requests, 1)))
	}
	b.section("/readyz under load", fmt.Sprintf(`A second process on loopback keeps %d connections busy with GET /readyz for %s against a
running entrypoint + Prosody (development profile; the server and the load generator share the
machine's %d CPUs). Every answer must be 200. The entrypoint answers from the cached result of
its one probe loop (here PROSODY_HEALTH_INTERVAL=1s), so Prosody sees about one c2s probe per
second whatever the request rate: "probes Prosody saw" is the change of %s during the run; the
last two columns are the entrypoint's own collections a second and bytes allocated per request
(the change of `+"`"+gcCount+"`"+` and `+"`"+allocBytes+"`"+` in its /metrics during the run).
wrk: `+"`wrk -t2 -c%d -d%ds --latency URL`"+` (pinned: `+"`taskset -a -p -c 0 PID`"+` for the entrypoint, `+"`taskset -c 1 wrk -t1 …`"+`); Go client: `+"`pfebench load -url URL -c %d -d %s`"+`.

%s`, conns, dur, nproc(), "`"+probeCount+"`", conns, int(dur.Seconds()), conns, dur, rows.String()))
	return nil
}

// pin moves every thread of pid to cpus (taskset -a -p) and returns the
// function that gives it every CPU again.
func pin(pid int, cpus string) (func() error, error) {
	set := func(list string) error {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", list, fmt.Sprint(pid)).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset -a -p -c %s %d: %w: %s", list, pid, err, out)
		}
		return nil
	}
	if err := set(cpus); err != nil {
		return nil, err
	}
	return func() error { return set(fmt.Sprintf("0-%d", nproc()-1)) }, nil
}
