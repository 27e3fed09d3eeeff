package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    proc
		wantErr bool
	}{
		{line: "42 (prosody) S 7 42 42 0", want: proc{PID: 42, PPID: 7, State: 'S', Comm: "prosody"}},
		{line: "9 (a (b) c) Z 1 9 9", want: proc{PID: 9, PPID: 1, State: 'Z', Comm: "a (b) c"}},
		{line: "9 no comm", wantErr: true},
		{line: "9 (x)", wantErr: true},
	} {
		got, err := parseStat(tc.line)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v (error %v)", tc.line, got, err, tc.want, tc.wantErr)
		}
	}
}

// The real /proc of this test process: it has a parent, is not a zombie, and has descriptors.
func TestProcessesSeesSelf(t *testing.T) {
	ps, err := processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.PID == os.Getpid() {
			if p.PPID != os.Getppid() || p.State == 'Z' {
				t.Fatalf("self as read from /proc: %+v (ppid want %d)", p, os.Getppid())
			}
			if n, err := fdCount(p.PID); err != nil || n < 3 {
				t.Fatalf("fdCount(self) = %d, %v; want at least stdin, stdout, stderr", n, err)
			}
			return
		}
	}
	t.Fatalf("pid %d not among %d processes", os.Getpid(), len(ps))
}

func TestSumSamples(t *testing.T) {
	page := []byte(`# HELP prosody_pfe_reloads_total Reloads by outcome.
# TYPE prosody_pfe_reloads_total counter
prosody_pfe_reloads_total{outcome="applied"} 3
prosody_pfe_reloads_total{outcome="refused"} 2
prosody_pfe_reloads_total_other 100
go_goroutines 14
`)
	if v, err := sumSamples(page, "prosody_pfe_reloads_total"); err != nil || v != 5 {
		t.Errorf("reloads = %v, %v; want 5 (the longer name left out)", v, err)
	}
	if v, err := sumSamples(page, "go_goroutines"); err != nil || v != 14 {
		t.Errorf("goroutines = %v, %v; want 14", v, err)
	}
	if _, err := sumSamples(page, "go_threads"); err == nil {
		t.Error("a missing metric gave no error")
	}
}

func TestDurations(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	med, p99, worst := durations(ds)
	if med != 51*time.Millisecond || p99 != 99*time.Millisecond || worst != 100*time.Millisecond {
		t.Errorf("durations = %s %s %s; want 51ms 99ms 100ms", med, p99, worst)
	}
	if m, p, w := durations(nil); m != 0 || p != 0 || w != 0 {
		t.Error("empty sample not zero")
	}
}
