package initsteps_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
)

// BenchmarkRestartStages runs every init stage of a server's start (the
// preamble, then the start-up stages, listeners included) on a tree a first
// start already rendered and checked: what a restart costs before Prosody's
// exec. Each stage's median is reported as a metric.
func BenchmarkRestartStages(b *testing.B) {
	_, env := server(b, nil)
	first := initsteps.New(initsteps.Config{Env: env})
	runAll(b, first)
	per := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := initsteps.New(initsteps.Config{Env: env})
		for _, r := range runAll(b, s) {
			per[r.Name] = append(per[r.Name], r.Duration)
		}
	}
	b.StopTimer()
	for name, ds := range per {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), name+"-µs")
	}
}

func runAll(b *testing.B, s *initsteps.State) []initsteps.Result {
	b.Helper()
	pre, err := initsteps.Run(context.Background(), initsteps.Preamble(), s, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	rest, err := initsteps.Run(context.Background(), initsteps.Startup(s), s, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if s.Listeners != nil {
		s.Listeners.Close()
	}
	return append(pre, rest...)
}
