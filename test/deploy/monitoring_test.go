package deploy

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// metricName finds the series names in a PromQL expression: the entrypoint's (prosody_pfe_*,
// checked against the code by TestMonitoringNamesAreExported), Prosody's (prosody_*, checked
// against a real Prosody's scrape by TestPrometheusRunsShippedRulesOnRealServer) and `up`.
var metricName = regexp.MustCompile(`\b(up|prosody_[a-z0-9_]+)\b`)

func metricsIn(expr string) []string {
	return metricName.FindAllString(expr, -1)
}

func TestPrometheusConfigPassesPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	root := repoRoot(t)
	runTool(t, root, os.Environ(), nil, promtool, "check", "config", "docker/configs/prometheus/prometheus.yml")
	out := runTool(t, root, os.Environ(), nil, promtool, "check", "rules", "docker/configs/prometheus/rules/prosody-pfe.yml")
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules printed no SUCCESS:\n%s", out)
	}
	// The alerts fire on the series that should fire them (docker/configs/prometheus/tests).
	runTool(t, root, os.Environ(), nil, promtool, "test", "rules", "docker/configs/prometheus/tests/prosody-pfe.test.yml")
}

// TestPrometheusScrapesEntrypointAndProsody: prometheus.yml scrapes the ports the entrypoint
// listens on, as its own settings loader derives them from the environment compose gives the
// prosody service (base.yml + monitoring.yml), not from a port list kept here.
func TestPrometheusScrapesEntrypointAndProsody(t *testing.T) {
	ports := entrypointPorts(t, composeServiceEnviron(composeConfig(t, "base", "monitoring"), "prosody"))
	wantTargets := []string{"prosody:" + strconv.Itoa(ports["health"]), "prosody:" + strconv.Itoa(ports["http"])}

	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docker/configs/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := yamlDocs(t, data)
	if len(docs) != 1 {
		t.Fatalf("prometheus.yml: want one document, got %d", len(docs))
	}
	targets := map[string]string{}
	jobs, _ := dig(docs[0], "scrape_configs")
	for _, j := range jobs.([]any) {
		tl, _ := dig(j, "static_configs", 0, "targets")
		for _, target := range tl.([]any) {
			targets[target.(string)] = digString(j, "metrics_path")
		}
	}
	for _, want := range wantTargets {
		if targets[want] != "/metrics" {
			t.Errorf("prometheus.yml does not scrape %s/metrics (targets: %v)", want, targets)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "docker/configs/grafana/dashboards/prosody-pfe.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID         int    `json:"id"`
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("prosody-pfe.json is not valid JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard needs a uid, a title and panels; got uid=%q title=%q panels=%d", dash.UID, dash.Title, len(dash.Panels))
	}

	// The datasource the panels name is the one Grafana provisions.
	dsData, err := os.ReadFile(filepath.Join(root, "docker/configs/grafana/provisioning/datasources/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	ds := yamlDocs(t, dsData)
	dsUID := digString(ds[0], "datasources", 0, "uid")
	if dsUID == "" || digString(ds[0], "datasources", 0, "type") != "prometheus" {
		t.Fatalf("provisioned datasource must be a prometheus datasource with a uid: %v", ds[0])
	}

	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != dsUID {
			t.Errorf("panel %q uses datasource %q, provisioned is %q", p.Title, p.Datasource.UID, dsUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			ms := metricsIn(tg.Expr)
			if len(ms) == 0 {
				t.Errorf("panel %q query %q names no metric", p.Title, tg.Expr)
			}
			for _, m := range ms {
				used[m] = true
			}
		}
	}
	// It shows both sides: the entrypoint's and Prosody's own metrics.
	var pfe, prosody []string
	for m := range used {
		switch {
		case strings.HasPrefix(m, "prosody_pfe_"):
			pfe = append(pfe, m)
		case strings.HasPrefix(m, "prosody_mod_"):
			prosody = append(prosody, m)
		}
	}
	sort.Strings(pfe)
	if len(pfe) < 5 || len(prosody) < 2 {
		t.Errorf("dashboard should chart the entrypoint's and Prosody's metrics; entrypoint: %v, prosody: %v", pfe, prosody)
	}

	// The dashboard provider points where compose/monitoring.yml mounts the dashboards.
	prov, err := os.ReadFile(filepath.Join(root, "docker/configs/grafana/provisioning/dashboards/prosody-pfe.yml"))
	if err != nil {
		t.Fatal(err)
	}
	path := digString(yamlDocs(t, prov)[0], "providers", 0, "options", "path")
	mon, err := os.ReadFile(filepath.Join(root, "compose/monitoring.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if path == "" || !strings.Contains(string(mon), "grafana/dashboards:"+path+":ro") {
		t.Errorf("dashboard provider path %q is not where compose/monitoring.yml mounts the dashboards", path)
	}
}

// TestJobLabelsAreScrapeJobs: every job label the alert rules, the promtool rule tests and the
// dashboards filter on is a job_name of the shipped prometheus.yml. A renamed scrape job would
// otherwise leave up{job="…"} == 0 alerts (entrypoint down, Prosody metrics down) matching no
// series: they would never fire.
func TestJobLabelsAreScrapeJobs(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "docker/configs/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	list, _ := dig(yamlDocs(t, data)[0], "scrape_configs")
	for _, j := range list.([]any) {
		jobs[digString(j, "job_name")] = true
	}
	jobMatcher := regexp.MustCompile(`\bjob\s*(=~|=)\s*\\?"([^"\\]*)\\?"`)
	n := 0
	texts := monitoringTexts(t, root)
	for _, f := range slices.Sorted(maps.Keys(texts)) {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		for _, m := range jobMatcher.FindAllStringSubmatch(texts[f], -1) {
			n++
			alts := []string{m[2]}
			if m[1] == "=~" {
				alts = strings.Split(m[2], "|")
			}
			for _, a := range alts {
				if !jobs[a] {
					t.Errorf("%s: %s names job %q; prometheus.yml scrapes the jobs %v", f, m[0], a, slices.Sorted(maps.Keys(jobs)))
				}
			}
		}
	}
	if n == 0 {
		t.Error("no job label found in the rules: this test checks nothing")
	}
}
