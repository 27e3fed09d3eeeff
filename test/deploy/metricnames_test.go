package deploy

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/reload"
)

// goldenFile lists the entrypoint's metric families, "name type" per line. pkg/health's
// TestMetricNamesGolden keeps it equal to what the registry serves on /metrics, so it is the
// one list the shipped rules, dashboard, rule tests and docs are checked against.
const goldenFile = "pkg/health/testdata/metric_names.golden"

// exportedFamilies reads goldenFile: family name → type (counter, gauge, histogram, …).
func exportedFamilies(t *testing.T, root string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, goldenFile))
	if err != nil {
		t.Fatalf("read the metric names the entrypoint exports: %v", err)
	}
	fams := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("%s: line %q is not \"name type\"", goldenFile, line)
		}
		fams[f[0]] = f[1]
	}
	return fams
}

// exportedSeries are the series names a query may use: every family, and for a histogram
// its _bucket, _sum and _count series.
func exportedSeries(fams map[string]string) map[string]bool {
	names := map[string]bool{}
	for name, typ := range fams {
		names[name] = true
		if typ == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	return names
}

// acceptedLabelValues are the values of the labels that rules, panels and tests filter on, taken
// from the Go constants the code labels the series with: the readiness states of pkg/health
// (health.States) and every exported
// reload.Outcome constant of pkg/reload.
func acceptedLabelValues(t *testing.T, root string) map[string]map[string][]string {
	t.Helper()
	var states []string
	for _, s := range health.States() {
		states = append(states, s.String())
	}
	return map[string]map[string][]string{
		"prosody_pfe_ready_state":   {"state": states},
		"prosody_pfe_reloads_total": {"outcome": reloadOutcomes(t, root)},
	}
}

// reloadOutcomes returns the values of every exported constant of type reload.Outcome, read
// from pkg/reload's source, so a new outcome needs no second list here.
func reloadOutcomes(t *testing.T, root string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "pkg", "reload", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Outcome" {
					continue
				}
				for i, n := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !n.IsExported() || !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatalf("%s: constant %s: %v", path, n.Name, err)
					}
					out = append(out, v)
				}
			}
		}
	}
	// Each constant the alert rule needs must be among them: a sanity check of the parse.
	for _, o := range []reload.Outcome{reload.Refused, reload.Failed} {
		if !slices.Contains(out, string(o)) {
			t.Fatalf("reload outcome %q not found among the Outcome constants of pkg/reload (found %v)", o, out)
		}
	}
	sort.Strings(out)
	return out
}

// pfeRef is one mention of an entrypoint metric: a name, or a name prefix followed by "*"
// (as in prose), with its label matchers when a selector follows.
var pfeRef = regexp.MustCompile(`prosody_pfe_[a-z_]+(\*)?(\{[^{}]*\})?`)

// labelMatcher is one PromQL label matcher inside a selector.
var labelMatcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)

// monitoringTexts returns the files that name the entrypoint's metrics, by path relative to
// root, each as the text a reader sees: the alert rules, the promtool rule tests, the Grafana
// dashboards (every JSON string, decoded) and the docs.
func monitoringTexts(t *testing.T, root string) map[string]string {
	t.Helper()
	var paths []string
	for _, pattern := range []string{
		"docker/configs/prometheus/rules/*.yml",
		"docker/configs/prometheus/tests/*.yml",
		"docker/configs/grafana/dashboards/*.json",
		"docs/*.md",
		"README.md",
	} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil || len(m) == 0 {
			t.Fatalf("no file matches %s (%v)", pattern, err)
		}
		paths = append(paths, m...)
	}
	texts := map[string]string{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		text := string(data)
		if strings.HasSuffix(p, ".json") {
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			text = strings.Join(jsonStrings(v), "\n")
		}
		texts[rel] = text
	}
	return texts
}

// jsonStrings returns every string value in a decoded JSON document.
func jsonStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, jsonStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, jsonStrings(e)...)
		}
		return out
	}
	return nil
}

// checkMetricRefs returns one problem per mention in text of a prosody_pfe_ name the
// entrypoint does not export, or of a label value it never sets on a label listed in accepted.
func checkMetricRefs(text string, series map[string]bool, accepted map[string]map[string][]string) []string {
	var problems []string
	for _, m := range pfeRef.FindAllStringSubmatch(text, -1) {
		name := strings.TrimSuffix(strings.TrimSuffix(m[0], m[2]), "*")
		if m[1] == "*" {
			found := false
			for s := range series {
				found = found || strings.HasPrefix(s, name)
			}
			if !found {
				problems = append(problems, name+"*: no exported metric starts so")
			}
			continue
		}
		if !series[name] {
			problems = append(problems, name+": not a metric the entrypoint exports (see "+goldenFile+")")
			continue
		}
		for _, lm := range labelMatcher.FindAllStringSubmatch(m[2], -1) {
			values, checked := accepted[name][lm[1]]
			if !checked {
				continue
			}
			alts := []string{lm[3]}
			if lm[2] == "=~" || lm[2] == "!~" {
				alts = strings.Split(lm[3], "|")
			}
			for _, a := range alts {
				if !slices.Contains(values, a) {
					problems = append(problems, m[0]+": "+lm[1]+" "+strconv.Quote(a)+" is not a value the entrypoint sets (it sets "+strings.Join(values, ", ")+"; a regex must list them as a|b)")
				}
			}
		}
	}
	return problems
}

// TestMonitoringNamesAreExported: every entrypoint metric that the alert rules, the Grafana
// dashboard, the promtool rule tests and the docs name is one /metrics serves (the golden
// list of pkg/health), and every readiness state or reload outcome they filter on is one the
// code sets. A misspelt name is an alert that never fires or a panel that stays empty.
func TestMonitoringNamesAreExported(t *testing.T) {
	root := repoRoot(t)
	series := exportedSeries(exportedFamilies(t, root))
	accepted := acceptedLabelValues(t, root)
	texts := monitoringTexts(t, root)
	files := make([]string, 0, len(texts))
	for f := range texts {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		for _, p := range checkMetricRefs(texts[f], series, accepted) {
			t.Errorf("%s: %s", f, p)
		}
	}
	// The rules must name the entrypoint's metrics at all, or this test checks nothing.
	if n := len(pfeRef.FindAllString(texts["docker/configs/prometheus/rules/prosody-pfe.yml"], -1)); n < 5 {
		t.Errorf("the alert rules name %d entrypoint metrics; expected the readiness, process, restart, reload and certificate alerts", n)
	}
}

// TestMetricRefCheckerCatchesMistakes: the checker itself fails on the mistakes it exists for.
func TestMetricRefCheckerCatchesMistakes(t *testing.T) {
	root := repoRoot(t)
	series := exportedSeries(exportedFamilies(t, root))
	accepted := acceptedLabelValues(t, root)
	for _, tc := range []struct {
		text string
		bad  bool
	}{
		{`prosody_pfe_ready == 0`, true},
		{`increase(prosody_pfe_restarts_total[15m])`, true},
		{`prosody_pfe_reloads_total{outcome=~"failure|failed"}`, true},
		{`prosody_pfe_ready_state{state="up"}`, true},
		{"`prosody_pfe_nothing_*` metrics", true},
		{`prosody_pfe_ready_state{instance="x",state="ready"} == 0`, false},
		{`increase(prosody_pfe_reloads_total{outcome=~"refused|failed"}[10m])`, false},
		{`histogram_quantile(0.9, rate(prosody_pfe_reload_duration_seconds_bucket[5m]))`, false},
		{"`prosody_pfe_stage_*` metrics", false},
	} {
		if got := checkMetricRefs(tc.text, series, accepted); (len(got) > 0) != tc.bad {
			t.Errorf("%s: problems %q, want bad=%v", tc.text, got, tc.bad)
		}
	}
}
