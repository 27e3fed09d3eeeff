// Package wait is the one deadline-bounded poll of the tests, the soak and
// the benchmarks: wait for a condition instead of sleeping for a guess. It is
// not used by the product.
package wait

import (
	"errors"
	"testing"
	"time"
)

// Interval is how often Until and Holds look at their condition: short
// against the deadlines in use (seconds), long enough not to busy-loop.
const Interval = 20 * time.Millisecond

// stop wraps an error that ends a wait at once.
type stop struct{ err error }

func (s stop) Error() string { return s.err.Error() }
func (s stop) Unwrap() error { return s.err }

// Abort makes a condition's error final: Until fails the test at once with
// it instead of polling on (a process that exited will not start listening).
func Abort(err error) error { return stop{err} }

// Until calls cond every Interval until it returns nil, and fails the test
// when limit passes first, with what was awaited and cond's last error. A
// condition that returns Abort(err) fails the test at once.
func Until(t testing.TB, limit time.Duration, what string, cond func() error) {
	t.Helper()
	if err := For(limit, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// For is Until for callers without a testing.TB (the soak, the benchmarks):
// nil once cond holds, else an error naming the deadline and cond's last
// error.
func For(limit time.Duration, cond func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var s stop
		if errors.As(err, &s) {
			return s.err
		}
		if time.Now().After(deadline) {
			return &TimeoutError{Limit: limit, Last: err}
		}
		time.Sleep(Interval)
	}
}

// TimeoutError is For's error when the deadline passed.
type TimeoutError struct {
	Limit time.Duration
	Last  error
}

func (e *TimeoutError) Error() string {
	return "not within " + e.Limit.String() + "; last: " + e.Last.Error()
}

func (e *TimeoutError) Unwrap() error { return e.Last }

// Holds checks that cond stays nil for the whole of d, looking every
// Interval, and fails the test the first time it does not: for "and nothing
// more happens" after an event.
func Holds(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if err := cond(); err != nil {
			t.Fatalf("%s stopped holding: %v", what, err)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(Interval)
	}
}
