package health

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/listeners"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// exercise calls every observer method so each metric family has a series.
func exercise(m *Monitor) {
	m.StageDone("render", 12*time.Millisecond, nil)
	m.StageDone("check", 40*time.Millisecond, errors.New("prosodyctl check config: exit 1"))
	m.SetStagesDone()
	m.ChildStarted(os.Getpid())
	m.ChildExited(os.Getpid(), 143, "SIGTERM")
	m.Restarting(1, time.Second)
	m.ChildStarted(os.Getpid())
	m.Reaped(2)
	m.ReloadStarted()
	m.ReloadDone("applied", 30*time.Millisecond, nil)
	m.RenderDone(4 * time.Millisecond)
	m.CertExpiry("example.test", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	m.met.probeSeconds.Observe(0.001) // the probe loop does not run in plain mode
	m.met.setPlanModules([]hostModuleJSON{{Host: "example.test", Planned: []string{"roster"}}})
}

func scrape(t *testing.T, m *Monitor) string {
	t.Helper()
	code, body, _ := get(t, m, MetricsPath)
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	return body + "\n"
}

// TestMetricsPromtool lints what /metrics serves with promtool (Debian package prometheus).
func TestMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install the Debian package prometheus")
	}
	m := startMonitor(t, Config{Mode: ModePlain})
	exercise(m)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, m))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetricNamesGolden pins our metric families (name and type). Run with -update
// after a deliberate change. Go and process collector families are checked for
// presence only: their set belongs to client_golang.
func TestMetricNamesGolden(t *testing.T) {
	m := startMonitor(t, Config{Mode: ModePlain})
	exercise(m)
	body := scrape(t, m)
	// A database check adds its gauge: the binary exports it with PostgreSQL storage.
	withDB := startMonitor(t, Config{Mode: ModeProsody, C2SAddr: "127.0.0.1:1", Domain: "example.test",
		DBNetwork: "tcp", DBAddr: "127.0.0.1:1"})
	// Held sockets add the accept-queue gauge; its family is what counts
	// here, so a set that names one socket stands in for the bound ones.
	withDB.SetListeners(namedListener{})
	var ours []string
	for line := range strings.SplitSeq(body+scrape(t, withDB), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], namespace+"_") {
			ours = append(ours, f[2]+" "+f[3])
		}
	}
	slices.Sort(ours)
	ours = slices.Compact(ours)
	got := []byte(strings.Join(ours, "\n") + "\n")
	golden := filepath.Join("testdata", "metric_names.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestMetricNamesGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("metric names changed:\n--- got\n%s--- want\n%s", got, want)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", `prosody_pfe_ready_state{state="ready"} 1`,
		`prosody_pfe_child_exits_total{code="143"} 1`, `prosody_pfe_reloads_total{outcome="applied"} 1`,
		`prosody_pfe_cert_expiry_timestamp_seconds{host="example.test"} 1.893553445e+09`, `prosody_pfe_stage_success{stage="check"} 0`} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
}

// prosody_pfe_plan_modules is per host, as its help says: a VirtualHost
// counts the global modules it loads and its own, so two VirtualHosts that
// share the global modules each count them, and the series says which host
// misses a module. A host that leaves the plan loses its series.
func TestPlanModulesPerHost(t *testing.T) {
	m := startMonitor(t, Config{Mode: ModePlain})
	m.met.setPlanModules([]hostModuleJSON{
		{Host: "one.example", Planned: []string{"disco", "pfe_onehost", "roster"}},
		{Host: "two.example", Planned: []string{"disco", "pfe_onehost", "roster"}, Missing: []string{"pfe_onehost"}},
		{Host: "conference.two.example", Planned: []string{"muc"}},
	})
	body := scrape(t, m)
	for _, want := range []string{
		`prosody_pfe_plan_modules{host="one.example",state="planned"} 3`,
		`prosody_pfe_plan_modules{host="one.example",state="missing"} 0`,
		`prosody_pfe_plan_modules{host="two.example",state="planned"} 3`,
		`prosody_pfe_plan_modules{host="two.example",state="missing"} 1`,
		`prosody_pfe_plan_modules{host="conference.two.example",state="planned"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, grepMetric(body, "plan_modules"))
		}
	}
	if !strings.Contains(body, "# HELP prosody_pfe_plan_modules Modules the plan loads on each host") {
		t.Errorf("the help does not say the count is per host:\n%s", grepMetric(body, "plan_modules"))
	}
	m.met.setPlanModules([]hostModuleJSON{{Host: "one.example", Planned: []string{"disco", "roster"}}})
	body = scrape(t, m)
	if strings.Contains(body, "two.example") || !strings.Contains(body, `prosody_pfe_plan_modules{host="one.example",state="planned"} 2`) {
		t.Errorf("after two.example left the plan:\n%s", grepMetric(body, "plan_modules"))
	}
}

func grepMetric(body, sub string) string {
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestExitLabelBounded(t *testing.T) {
	for code, want := range map[int]string{0: "0", 143: "143", 255: "255", 256: "other", -1: "other"} {
		if got := exitLabel(code); got != want {
			t.Errorf("exitLabel(%d) = %q, want %q", code, got, want)
		}
	}
}

// namedListener is a ListenerSet of one socket, for the metric names only.
type namedListener struct{}

func (namedListener) Specs() []listeners.Spec {
	return []listeners.Spec{{Service: "c2s", Interface: "127.0.0.1", Port: 5222}}
}
func (namedListener) Queued() []int { return []int{0} }
