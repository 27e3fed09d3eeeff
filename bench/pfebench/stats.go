package main

import (
	"fmt"
	"runtime"
	"slices"
	"time"
)

// Sample is a set of timed runs of one thing.
type Sample []time.Duration

// Quantile returns the q-quantile (0..1) by nearest rank on a sorted copy; 0 for
// an empty sample.
func (s Sample) Quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	i := int(q*float64(len(c))+0.5) - 1
	return c[min(max(i, 0), len(c)-1)]
}

// Median is Quantile(0.5).
func (s Sample) Median() time.Duration { return s.Quantile(0.5) }

// Max is the largest run.
func (s Sample) Max() time.Duration { return s.Quantile(1) }

// ms formats a duration in milliseconds with enough digits for sub-ms values.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 0.1:
		return fmt.Sprintf("%.3f ms", v)
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

// ratio divides two durations; 0 when the divisor is 0.
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// waitFor polls cond every 5 ms until it holds, or fails after d naming what
// it waited for.
func waitFor(d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func nproc() int { return runtime.NumCPU() }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
