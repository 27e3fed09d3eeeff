package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// TestPrometheusRunsShippedRulesOnRealServer runs the shipped monitoring files by their real
// consumer: Debian's prometheus scrapes a running entrypoint and its Prosody 13 on 127.0.0.1,
// with the shipped prometheus.yml and alert rules (on a faster clock: see fastRules), and
// answers on its HTTP API that
//   - every panel of the shipped Grafana dashboard has data, every Prosody metric the
//     dashboard and the rules name is one Prosody serves, and the readiness states and reload
//     outcomes served are the ones the Go constants define;
//   - ProsodyReloadFailed fires when a bad file lands in PROSODY_CUSTOM_DIR (refused);
//   - ProsodyNotReady fires while Prosody is wedged (SIGSTOP), and resolves after SIGCONT;
//   - ProsodyRestarting fires after prosody is killed (SIGKILL) three times.
func TestPrometheusRunsShippedRulesOnRealServer(t *testing.T) {
	promBin := requireTool(t, "prometheus", "prometheus")
	requireTool(t, "prosody", "prosody")
	root := repoRoot(t)
	srv := startPFE(t, buildEntrypoint(t, root), root)
	prom := startPrometheus(t, promBin, root, srv.ports)
	srv.waitReady(t, 60*time.Second)
	prom.waitTargetsUp(t, 30*time.Second)

	if !t.Run("dashboard", func(t *testing.T) { checkDashboardOnRealScrape(t, root, srv, prom) }) {
		return
	}

	if !t.Run("refused reload fires ProsodyReloadFailed", func(t *testing.T) {
		// The active profile, overridden in the custom directory by a file that does not parse.
		bad := filepath.Join(srv.dir, "custom", "profiles", "development", "profile.json")
		if err := os.MkdirAll(filepath.Dir(bad), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bad, []byte("{\"name\": \"development\",\n  \"features\": [\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		a := prom.waitAlert(t, 30*time.Second, "ProsodyReloadFailed", "firing")
		if a.Labels["outcome"] != "refused" {
			t.Errorf("ProsodyReloadFailed fired with outcome %q, want refused: %v", a.Labels["outcome"], a.Labels)
		}
	}) {
		return
	}

	if !t.Run("wedged prosody fires ProsodyNotReady, which resolves", func(t *testing.T) {
		pid := srv.childPID(t)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP prosody (pid %d): %v", pid, err)
		}
		resumed := false
		defer func() {
			if !resumed {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}()
		prom.waitAlert(t, 45*time.Second, "ProsodyNotReady", "firing")
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT prosody (pid %d): %v", pid, err)
		}
		resumed = true
		prom.waitNoAlert(t, 30*time.Second, "ProsodyNotReady")
	}) {
		return
	}

	t.Run("crashing prosody fires ProsodyRestarting", func(t *testing.T) {
		for i := range 3 {
			pid := srv.childPID(t)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill %d: SIGKILL prosody (pid %d): %v", i+1, pid, err)
			}
			wait.Until(t, 30*time.Second, fmt.Sprintf("prosody restarted after kill %d", i+1), func() error {
				if err := srv.exited(); err != nil {
					return wait.Abort(err)
				}
				st, err := srv.status()
				if err != nil {
					return err
				}
				if st.Child.PID == pid || !st.Child.Running || st.State != "ready" {
					return fmt.Errorf("state %q, child pid %d running %v (killed %d)", st.State, st.Child.PID, st.Child.Running, pid)
				}
				return nil
			})
		}
		prom.waitAlert(t, 30*time.Second, "ProsodyRestarting", "firing")
	})
}

// checkDashboardOnRealScrape evaluates every query of the shipped dashboard in Prometheus.
func checkDashboardOnRealScrape(t *testing.T, root string, srv *pfeServer, prom *promServer) {
	// Prosody clears its connection gauges on each collection and sets only those of the
	// open connections, so a client and a server stream stay open while the panels are read.
	defer openStream(t, srv.ports.C2S, "jabber:client", "")()
	defer openStream(t, srv.ports.S2S, "jabber:server", "remote.example")()

	data, err := os.ReadFile(filepath.Join(root, "docker/configs/grafana/dashboards/prosody-pfe.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
				AllValue   string `json:"allValue"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	// Grafana's variables, as a dashboard opened with its defaults has them: each template
	// variable at its "All" value, $__rate_interval at its floor of four scrape intervals.
	vars := map[string]string{"__rate_interval": (4 * scrapeInterval).String(), "__interval": scrapeInterval.String()}
	type query struct{ what, expr string }
	var templ []query
	for _, v := range dash.Templating.List {
		vars[v.Name] = v.AllValue
		m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %q: definition %q is not label_values(metric, label)", v.Name, v.Definition)
		}
		templ = append(templ, query{"variable " + v.Name, fmt.Sprintf("group by (%s) (%s{%s!=\"\"})", m[2], m[1], m[2])})
	}
	variable := regexp.MustCompile(`\$(\w+)|\$\{(\w+)\}`)
	expand := func(expr string) string {
		return variable.ReplaceAllStringFunc(expr, func(s string) string {
			m := variable.FindStringSubmatch(s)
			name := m[1] + m[2]
			v, ok := vars[name]
			if !ok {
				t.Fatalf("query %q uses $%s, which is neither a dashboard variable nor a Grafana one this test knows", expr, name)
			}
			return v
		})
	}

	// Every Prosody metric the dashboard and the rules name is a family Prosody serves.
	rules, err := os.ReadFile(filepath.Join(root, "docker/configs/prometheus/rules/prosody-pfe.yml"))
	if err != nil {
		t.Fatal(err)
	}
	served := prosodyFamilies(t, srv.ports.HTTP)
	var exprs []string
	for _, g := range yamlDocs(t, rules)[0]["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			exprs = append(exprs, digString(r, "expr"))
		}
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, e := range exprs {
		for _, name := range metricsIn(e) {
			if name == "up" || strings.HasPrefix(name, "prosody_pfe_") || served[name] {
				continue
			}
			t.Errorf("%s is not a series Prosody's /metrics serves (families: %d)", name, len(served))
		}
	}

	// Each panel shows data: at least one of its queries returns series (the outgoing s2s
	// query of the s2s panel needs a federating peer, which this test has none of), and
	// none of them is an error.
	wait.Until(t, 30*time.Second, "every dashboard panel and variable to have data", func() error {
		var empty []string
		for _, q := range templ {
			n, err := prom.query(expand(q.expr))
			if err != nil {
				return wait.Abort(fmt.Errorf("%s: %w", q.what, err))
			}
			if n == 0 {
				empty = append(empty, q.what)
			}
		}
		for _, p := range dash.Panels {
			total := 0
			for _, tg := range p.Targets {
				n, err := prom.query(expand(tg.Expr))
				if err != nil {
					return wait.Abort(fmt.Errorf("panel %q: %w", p.Title, err))
				}
				total += n
			}
			if total == 0 {
				empty = append(empty, "panel "+strconv.Quote(p.Title))
			}
		}
		if len(empty) > 0 {
			return fmt.Errorf("no data for %s", strings.Join(empty, ", "))
		}
		return nil
	})

	// The label values served are the ones the Go constants define (and the rules are
	// checked against by TestMonitoringNamesAreExported).
	for metric, labels := range acceptedLabelValues(t, root) {
		for label, want := range labels {
			got, err := prom.labelValues(fmt.Sprintf("group by (%s) (%s)", label, metric), label)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, sortedCopy(want)) {
				t.Errorf("%s serves %s values %v; the Go constants define %v", metric, label, got, sortedCopy(want))
			}
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

// prosodyFamilies returns the series names Prosody's own /metrics declares: each family of a
// "# TYPE" line, with the _total, _bucket, _sum, _count and _created series of its type.
func prosodyFamilies(t *testing.T, httpPort int) map[string]bool {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/metrics")
	if err != nil {
		t.Fatalf("Prosody's /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Prosody's /metrics: %s", resp.Status)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		names[f[2]] = true
		switch f[3] {
		case "counter":
			names[f[2]+"_total"], names[f[2]+"_created"] = true, true
		case "histogram", "summary":
			for _, s := range []string{"_bucket", "_sum", "_count", "_created"} {
				names[f[2]+s] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read Prosody's /metrics: %v", err)
	}
	if len(names) == 0 {
		t.Fatal("Prosody's /metrics declares no metric family")
	}
	return names
}

// openStream opens an XMPP stream to 127.0.0.1:port in namespace ns (from is the sending
// domain of a server stream, empty for a client), waits for Prosody's stream features and
// returns the function that closes the connection.
func openStream(t *testing.T, port int, ns, from string) func() {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatalf("connect to %d: %v", port, err)
	}
	header := "<?xml version='1.0'?><stream:stream xmlns='" + ns + "' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'"
	if from != "" {
		header += " from='" + from + "' xmlns:db='jabber:server:dialback'"
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, header+">"); err != nil {
		t.Fatalf("open a %s stream on %d: %v", ns, port, err)
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), "</stream:features>") {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			conn.Close()
			t.Fatalf("%s stream on %d: no stream features: %v (got %q)", ns, port, err, got.String())
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return func() { conn.Close() }
}

// buildEntrypoint builds ./cmd/entrypoint into a temporary directory.
func buildEntrypoint(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "entrypoint")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/entrypoint")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/entrypoint: %v\n%s", err, out)
	}
	return bin
}

// pfeServer is one entrypoint running the Prosody pipeline, as the e2e tests start it: a
// development server for localhost on free 127.0.0.1 ports, every path under dir.
type pfeServer struct {
	cmd            *exec.Cmd
	dir            string
	ports          entrypointtest.Ports
	stdout, stderr entrypointtest.Buffer
	done           chan struct{}
}

// startPFE starts bin; t.Cleanup stops it (SIGTERM, then SIGKILL to its group) and prints
// its logs when the test failed. The readiness probe runs every second and crashes are
// restarted after 100 ms, so the faults of the test show within seconds.
func startPFE(t *testing.T, bin, root string) *pfeServer {
	t.Helper()
	return startPFEWith(t, bin, root, nil)
}

// startPFEWith is startPFE with extra (or overriding) PROSODY_* variables.
func startPFEWith(t *testing.T, bin, root string, extra map[string]string) *pfeServer {
	t.Helper()
	dir := t.TempDir() // MakeRoot opens its parent to the prosody user: no deeper directory
	env, ports, err := entrypointtest.ServerEnv(dir, filepath.Join(root, "config"))
	if err != nil {
		t.Fatal(err)
	}
	env["PROSODY_HEALTH_INTERVAL"] = "1s"
	env["PROSODY_RESTART_BACKOFF"] = "100ms"
	env["PROSODY_RESTART_MAX"] = "10"
	for k, v := range extra {
		env[k] = v
	}
	s := &pfeServer{cmd: exec.Command(bin), dir: dir, ports: ports, done: make(chan struct{})}
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start the entrypoint: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		stopGroup(s.cmd, s.done, 15*time.Second)
		if t.Failed() {
			t.Logf("entrypoint stderr:\n%s", lastBytes(s.stderr.String(), 8000))
			t.Logf("prosody stdout:\n%s", lastBytes(s.stdout.String(), 4000))
		}
	})
	return s
}

// stopGroup sends SIGTERM to cmd and waits up to grace for done, then SIGKILLs its group.
func stopGroup(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// exited is an error once the entrypoint has exited.
func (s *pfeServer) exited() error {
	select {
	case <-s.done:
		return fmt.Errorf("the entrypoint exited (code %d)", s.cmd.ProcessState.ExitCode())
	default:
		return nil
	}
}

// pfeStatus is the part of /status the test reads.
type pfeStatus struct {
	State string `json:"state"`
	Child struct {
		PID     int  `json:"pid"`
		Running bool `json:"running"`
	} `json:"child"`
}

func (s *pfeServer) status() (pfeStatus, error) {
	var st pfeStatus
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(s.ports.Health) + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s *pfeServer) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	wait.Until(t, d, "the entrypoint to report ready", func() error {
		if err := s.exited(); err != nil {
			return wait.Abort(err)
		}
		st, err := s.status()
		if err != nil {
			return err
		}
		if st.State != "ready" {
			return fmt.Errorf("state %q", st.State)
		}
		return nil
	})
}

// childPID is the pid of the running prosody.
func (s *pfeServer) childPID(t *testing.T) int {
	t.Helper()
	st, err := s.status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Child.Running || st.Child.PID <= 0 {
		t.Fatalf("no running prosody: %+v", st)
	}
	return st.Child.PID
}

// scrapeInterval is the scrape and rule evaluation interval of the test's Prometheus.
const scrapeInterval = time.Second

// fastRules is the shipped rule file on a clock sixty times faster: each `for:` duration
// becomes as many seconds as it had minutes (5m → 5s, 1h → 60s; at least 1s), and a group's
// own evaluation interval, if any, becomes scrapeInterval. Nothing else changes: expressions,
// thresholds and range windows stay as shipped (a window such as [15m] then spans the whole
// test). The result is JSON, which Prometheus reads as YAML.
func fastRules(t *testing.T, shipped []byte) []byte {
	t.Helper()
	docs := yamlDocs(t, shipped)
	if len(docs) != 1 {
		t.Fatalf("rule file: want one YAML document, got %d", len(docs))
	}
	groups, _ := docs[0]["groups"].([]any)
	if len(groups) == 0 {
		t.Fatal("rule file has no groups")
	}
	for _, g := range groups {
		gm := g.(map[string]any)
		if _, ok := gm["interval"]; ok {
			gm["interval"] = scrapeInterval.String()
		}
		rules, _ := gm["rules"].([]any)
		for _, r := range rules {
			rm := r.(map[string]any)
			f, ok := rm["for"].(string)
			if !ok {
				continue
			}
			d, err := time.ParseDuration(f)
			if err != nil {
				t.Fatalf("rule %v: for %q: %v (this test scales h/m/s durations only)", rm["alert"], f, err)
			}
			secs := max(int((d+time.Minute-1)/time.Minute), 1)
			rm["for"] = strconv.Itoa(secs) + "s"
		}
	}
	out, err := json.Marshal(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// promServer is a running Prometheus.
type promServer struct {
	base string
	log  entrypointtest.Buffer
}

// startPrometheus runs Debian's prometheus on a free 127.0.0.1 port with the shipped
// prometheus.yml, changed only so that its targets are the test server's ports, its scrape
// and evaluation intervals are scrapeInterval and its rule file is fastRules of the shipped
// one. Its storage is a t.TempDir(); t.Cleanup stops it.
func startPrometheus(t *testing.T, bin, root string, ports entrypointtest.Ports) *promServer {
	t.Helper()
	dir := t.TempDir()
	shipped, err := os.ReadFile(filepath.Join(root, "docker/configs/prometheus/rules/prosody-pfe.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "prosody-pfe.rules.json")
	if err := os.WriteFile(rulesPath, fastRules(t, shipped), 0o644); err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(filepath.Join(root, "docker/configs/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := yamlDocs(t, data)
	if len(docs) != 1 {
		t.Fatalf("prometheus.yml: want one document, got %d", len(docs))
	}
	cfg := docs[0]
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		cfg["global"] = global
	}
	global["scrape_interval"] = scrapeInterval.String()
	global["evaluation_interval"] = scrapeInterval.String()
	cfg["rule_files"] = []any{rulesPath}
	// The shipped targets are the compose service's ports; here the server's own.
	addr := map[string]string{
		"prosody:5282": "127.0.0.1:" + strconv.Itoa(ports.Health),
		"prosody:5280": "127.0.0.1:" + strconv.Itoa(ports.HTTP),
	}
	jobs, _ := cfg["scrape_configs"].([]any)
	for _, j := range jobs {
		statics, _ := j.(map[string]any)["static_configs"].([]any)
		for _, sc := range statics {
			targets, _ := sc.(map[string]any)["targets"].([]any)
			for i, tg := range targets {
				a, ok := addr[tg.(string)]
				if !ok {
					t.Fatalf("prometheus.yml: target %v is not one this test maps to the server (%v)", tg, addr)
				}
				targets[i] = a
			}
		}
	}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfgData, 0o644); err != nil {
		t.Fatal(err)
	}

	port, err := entrypointtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	p := &promServer{base: "http://127.0.0.1:" + strconv.Itoa(port[0])}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port[0]), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stopGroup(cmd, done, 10*time.Second)
		if t.Failed() {
			t.Logf("prometheus log:\n%s", lastBytes(p.log.String(), 4000))
			if b, err := json.MarshalIndent(cfg, "", "  "); err == nil {
				t.Logf("prometheus.yml:\n%s", b)
			}
		}
	})
	wait.Until(t, 30*time.Second, "prometheus to be ready", func() error {
		select {
		case <-done:
			return wait.Abort(fmt.Errorf("prometheus exited: %v\n%s", cmd.ProcessState, p.log.String()))
		default:
		}
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(p.base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	return p
}

// api GETs a Prometheus API path and decodes its data field into out.
func (p *promServer) api(path string, params url.Values, out any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s %s: %s: %s", path, params.Encode(), body.ErrorType, body.Error)
	}
	return json.Unmarshal(body.Data, out)
}

// sample is one series of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
}

// instant runs an instant query that must return a vector.
func (p *promServer) instant(expr string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %q, want a vector", expr, data.ResultType)
	}
	var out []sample
	return out, json.Unmarshal(data.Result, &out)
}

// query returns how many series expr returns now.
func (p *promServer) query(expr string) (int, error) {
	s, err := p.instant(expr)
	return len(s), err
}

// labelValues returns the sorted values of label in the result of expr.
func (p *promServer) labelValues(expr, label string) ([]string, error) {
	s, err := p.instant(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, x := range s {
		out = append(out, x.Metric[label])
	}
	sort.Strings(out)
	return out, nil
}

// waitTargetsUp waits until Prometheus has scraped every target successfully.
func (p *promServer) waitTargetsUp(t *testing.T, d time.Duration) {
	t.Helper()
	wait.Until(t, d, "prometheus to scrape the entrypoint and Prosody", func() error {
		var data struct {
			ActiveTargets []struct {
				ScrapePool string `json:"scrapePool"`
				Health     string `json:"health"`
				LastError  string `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := p.api("/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
			return err
		}
		if len(data.ActiveTargets) == 0 {
			return errors.New("no active target yet")
		}
		for _, tg := range data.ActiveTargets {
			if tg.Health != "up" {
				return fmt.Errorf("job %s: %s %s", tg.ScrapePool, tg.Health, tg.LastError)
			}
		}
		return nil
	})
}

// promAlert is one entry of /api/v1/alerts.
type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *promServer) alerts(name string) ([]promAlert, error) {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := p.api("/api/v1/alerts", nil, &data); err != nil {
		return nil, err
	}
	var out []promAlert
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name {
			out = append(out, a)
		}
	}
	return out, nil
}

// waitAlert waits until alert name is in state (pending or firing) and returns it.
func (p *promServer) waitAlert(t *testing.T, d time.Duration, name, state string) promAlert {
	t.Helper()
	var got promAlert
	wait.Until(t, d, name+" "+state, func() error {
		as, err := p.alerts(name)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.State == state {
				got = a
				return nil
			}
		}
		return fmt.Errorf("alerts named %s: %v", name, as)
	})
	return got
}

// waitNoAlert waits until alert name is neither pending nor firing.
func (p *promServer) waitNoAlert(t *testing.T, d time.Duration, name string) {
	t.Helper()
	wait.Until(t, d, name+" resolved", func() error {
		as, err := p.alerts(name)
		if err != nil {
			return err
		}
		if len(as) > 0 {
			return fmt.Errorf("still active: %v", as)
		}
		return nil
	})
}
