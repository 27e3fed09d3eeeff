package main

import (
	"strings"
	"testing"
	"time"
)

// The Container section belongs to another part of the project: a new report
// must carry it over verbatim, wherever it was and whatever follows it.
func TestMarkdownKeepsContainerSection(t *testing.T) {
	container := "## Container\n\n| image | size |\n|---|---|\n| prosody-pfe | 123 MiB |\n\nCold start: `docker run …`.\n"
	for name, prev := range map[string]string{
		"last":   "# Benchmarks\n\n## Summary\n\nOLD-SECTION-TEXT\n\n" + container,
		"middle": "# Benchmarks\n\n" + container + "## Exec overhead\n\nOLD-SECTION-TEXT\n",
		"none":   "",
	} {
		t.Run(name, func(t *testing.T) {
			r := Report{Machine: "m", Figures: []Figure{{What: "w", Result: "1", Target: "≤ 2", Verdict: "met", Command: "bench/run"}},
				Sections: []Section{{Title: "Exec overhead", Body: "new"}}, Notes: []string{"a note"}}
			got := r.Markdown(prev)
			if name == "none" {
				if strings.Contains(got, "## Container") {
					t.Fatalf("a Container section appeared from nowhere:\n%s", got)
				}
				return
			}
			if !strings.Contains(got, container) {
				t.Fatalf("Container section lost or altered:\n%s", got)
			}
			if strings.Count(got, "## Exec overhead") != 1 || strings.Contains(got, "OLD-SECTION-TEXT") {
				t.Fatalf("old sections must be replaced, not kept:\n%s", got)
			}
			if !strings.Contains(got, "## Found while measuring\n\n- a note") {
				t.Fatalf("notes missing:\n%s", got)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	var s Sample
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 50}, {0.9, 90}, {0.99, 99}, {1, 100}} {
		if got := s.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if s[0] != 100 {
		t.Error("Quantile sorted the caller's sample in place")
	}
	if (Sample{}).Median() != 0 {
		t.Error("empty sample: want 0")
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkPlanRender/enterprise-2         	      20	    661234 ns/op	  123 B/op	 4 allocs/op
BenchmarkPlanRender/enterprise-2         	      20	    700000 ns/op
BenchmarkReadyz-2   	   50000	     31000 ns/op
PASS
`
	got := parseGoBench(out)
	if s := got["BenchmarkPlanRender/enterprise"]; len(s) != 2 || s.Quantile(0) != 661234 {
		t.Errorf("enterprise = %v", s)
	}
	if s := got["BenchmarkReadyz"]; len(s) != 1 || s[0] != 31000 {
		t.Errorf("readyz = %v", s)
	}
}
