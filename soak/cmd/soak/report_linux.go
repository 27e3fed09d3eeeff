package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
)

// figure is one measured value next to its target.
type figure struct {
	Name   string
	Value  string
	Target string
	OK     bool
}

// result is what one scenario found.
type result struct {
	Name     string
	N        int // steps asked for
	Done     int // steps completed
	Limit    time.Duration
	Elapsed  time.Duration
	Figures  []figure
	Problems []string // each one a failure of the soak
}

func (r *result) figure(name, value, target string, ok bool) {
	r.Figures = append(r.Figures, figure{Name: name, Value: value, Target: target, OK: ok})
	if !ok {
		r.problem("%s = %s, target %s", name, value, target)
	}
}

// problem records a failure; at most 20 are kept, with a count of the rest.
func (r *result) problem(format string, args ...any) {
	const keep = 20
	switch {
	case len(r.Problems) < keep:
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	case len(r.Problems) == keep:
		r.Problems = append(r.Problems, "(more problems left out)")
	}
}

func (r *result) ok() bool { return len(r.Problems) == 0 && r.Done == r.N }

// durations summarises a sample: median, p99 and max.
func durations(ds []time.Duration) (med, p99, max time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := (len(s)*99 + 99) / 100
	return s[len(s)/2], s[min(idx, len(s))-1], s[len(s)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// renderReport writes RELIABILITY.md: how to reproduce, the machine, and each
// scenario's figures and problems.
func renderReport(o options, results []result) string {
	var b strings.Builder
	mode, cmd := "full", "soak/run"
	if o.Quick {
		mode, cmd = "quick", "soak/run --quick"
	}
	fmt.Fprintf(&b, "# Reliability\n\n")
	fmt.Fprintf(&b, "Faults the entrypoint survives, measured by the soak (%s run). Reproduce with `%s` (as root;\n", mode, cmd)
	fmt.Fprintf(&b, "`make soak` is the full run, `soak/run --quick` the CI run). Every server is real Prosody 13 supervised by\n")
	fmt.Fprintf(&b, "`bin/entrypoint` on 127.0.0.1 with free ports; the clients are real slixmpp sessions over STARTTLS.\n\n")
	fmt.Fprintf(&b, "Machine: %s/%s, %d CPUs, %s. Generated %s.\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		machine(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "| scenario | steps | time (limit) | result |\n|---|---|---|---|\n")
	for _, r := range results {
		verdict := "pass"
		if !r.ok() {
			verdict = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %d of %d | %s (%s) | %s |\n", r.Name, r.Done, r.N, r.Elapsed.Round(time.Second), r.Limit, verdict)
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", r.Name, about[r.Name])
		fmt.Fprintf(&b, "| figure | value | target | |\n|---|---|---|---|\n")
		for _, f := range r.Figures {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Name, f.Value, f.Target, okWord(f.OK))
		}
		if len(r.Problems) > 0 {
			fmt.Fprintf(&b, "\nProblems:\n\n")
			for _, p := range r.Problems {
				fmt.Fprintf(&b, "- %s\n", p)
			}
		}
	}
	b.WriteString(notes)
	return b.String()
}

// notes are what the soak found while it was built, and what was done about it.
const notes = `
## Findings and what was done

- SIGTERM in the first milliseconds of start-up can arrive before the Go runtime has run main's
  signal.Notify (the first statement of main). The process then dies of the signal itself; a shell and
  Docker report that as 143, the same code as a handled SIGTERM, and nothing is left running because
  nothing was started yet. As PID 1 in a container the kernel drops a signal that has no handler, so
  there it cannot happen. The sigterm figures count these deaths separately.
- An early version of the soak picked its five ports one listener at a time; the kernel handed the
  same port out twice and the entrypoint rightly refused to start (exit 78, "port already used by
  PROSODY_C2S_PORT"). The soak now holds every listener open until all ports are picked.
- Restart backoff doubles for each restart within PROSODY_RESTART_WINDOW (default 60s, backoff 1s, capped
  at 30s). Kills a few seconds apart under the defaults would therefore wait up to 30s: the kill9 soak sets
  the window to 1s and waits that long after each start, which is what an operator who expects
  ≤ 2s recovery from isolated crashes should configure too.
- A SIGSTOPped (wedged) Prosody kept ` + "`/livez`" + ` at 200 forever: the process existed, so nothing restarted
  it. The watchdog (PROSODY_WATCHDOG_TIMEOUT, default 60s) now restarts it, and the supervisor sends
  SIGCONT after SIGTERM so a stopped process shuts down by itself instead of waiting for SIGKILL at the
  end of the stop timeout. Detection is bounded below by the probe: three probes in a row must time out
  (2s each) before readiness drops, so with a 3s watchdog timeout the wedge heals in about 7.5s.
- The hostile scenario was written against three holes a local user had: the notify socket was 0666 and
  trusted every sender (one STOPPING=1 kept /readyz at 503 for good and blocked reloads); the rendered
  config was the prosody user's to edit, survived a kill -9 and made SIGHUP say "unchanged"; the config
  checks ran the tree's Lua as root. The socket is now the child's user's (0600) and only the child's pid
  counts; the runtime directory and rendered config are root's and the file is checked before every start
  and reload; the checks run as prosody, and production refuses a config tree others can change.
- Every restart of Prosody (a crash, the watchdog, a restart-class change) closed its listening sockets:
  while it was down every client got "connection refused" (mobile clients then back off for minutes).
  Measured with the kill9 scenario (x10, a connection attempt every 20ms): 95 of 577 attempts refused,
  about 9 per restart, with Prosody binding its own sockets (PROSODY_SOCKET_ACTIVATION=false); 0 of 603
  with the entrypoint holding them and passing them to each Prosody (LISTEN_FDS, the default now): the
  kernel queues the attempts and the next Prosody serves them.
`

// about says what each scenario does, for the report.
var about = map[string]string{
	"kill9": "SIGKILL of the running prosody (not the entrypoint), N times, while two clients stay logged in and\n" +
		"reconnect. Recovery is the time from the kill to `/readyz` answering 200 for the new prosody. Restart\n" +
		"backoff 100ms with a 1s restart window (the window is what keeps the backoff from doubling across kills\n" +
		"that are seconds apart). Zombies are children of the entrypoint in state Z that stay for 1s; descriptors are\n" +
		"`/proc/<entrypoint>/fd`; goroutines are `go_goroutines` from `/metrics`. A client connects to c2s every 20ms\n" +
		"through all the kills: attempts refused are what clients see while prosody restarts (0 with the listeners held\n" +
		"by the entrypoint, PROSODY_SOCKET_ACTIVATION, the default).",
	"edits": "N edits of a custom profile in PROSODY_CUSTOM_DIR, each waited for: valid ones change `motd_text`\n" +
		"(a live-reloadable option); invalid ones are bad JSON or an unknown module. After every step the rendered\n" +
		"`runtime/prosody.cfg.lua` must pass `luac5.4 -p`, an invalid edit must leave it byte-identical with\n" +
		"`last_reload.outcome` \"refused\", and a valid one must be \"applied\". Meanwhile a client pair exchanges\n" +
		"messages; it must never be disconnected and lose nothing. At the end Prosody's own `config:get` (admin\n" +
		"shell) must give the last valid value.",
	"sigterm": "SIGTERM to the entrypoint at a random moment of start-up (uniform between 0 and 1.2x the measured\n" +
		"time to ready), N times on the same directories. Each exit must be 0 or 143 within the stop timeout, and\n" +
		"afterwards no process may mention the server's directory (prosody, prosodyctl, checks) or be left orphaned.",
	"crash": "N rounds: accounts are created, clients write messages (archived in SQLite), then SIGKILL of the whole\n" +
		"process group (entrypoint and prosody) mid-traffic and a restart on the same data directory.\n" +
		"`PRAGMA integrity_check` must say ok and every account created so far must still log in.",
	"secrets": "PROSODY_DB_PASSWORD, PROSODY_ADMIN_PASSWORD and PROSODY_STATUS_TOKEN set to unique markers (SQLite\n" +
		"storage, so the DB password is unused). The markers must appear nowhere: the entrypoint's stderr, Prosody's stdout,\n" +
		"`/metrics`, `/status`, the rendered config, `entrypoint env`; and the file modes must hold: credentials\n" +
		"directory 0700 with files 0400, rendered config 0640 (root's; prosody reads it), generated secrets not\n" +
		"readable by others.",
	"hostile": "A hostile local user, N rounds against one running server: as the prosody user (setpriv, no\n" +
		"supplementary group) it appends to and replaces the rendered config; it sends STOPPING=1 and READY=1 to\n" +
		"the notify socket with systemd-notify (and nobody tries too); it plants `runtime/next` as a link to a\n" +
		"root-only directory and replaces a generated secret in `data/secrets` with a link to a root-only file,\n" +
		"then the entrypoint gets SIGHUP, so a reload reads both places. Every attempt counts; a success is a\n" +
		"changed rendered file, readiness lost, the root directory or file changed, or the root secret found\n" +
		"anywhere under the runtime directory. After each round `/readyz` must be 200 and `/status` config_hash\n" +
		"the rendered file's sha256.",
	"wedge": "SIGSTOP of the running prosody, N times, while two clients stay logged in: the process exists and the\n" +
		"kernel still accepts c2s connections, but nothing answers, so only the readiness probe can tell. With\n" +
		"PROSODY_WATCHDOG_TIMEOUT=3s and PROSODY_HEALTH_INTERVAL=1s the watchdog must restart it (SIGTERM then\n" +
		"SIGCONT, so the stopped process shuts down by itself) and count it; healed is the time from SIGSTOP to\n" +
		"`/readyz` 200 for a new prosody, and the clients must log in again. Most of that time is the probe's:\n" +
		"three probes in a row time out (2s each) before readiness drops, and the watchdog counts from the first.",
}
