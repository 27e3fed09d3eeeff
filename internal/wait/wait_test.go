package wait_test

import (
	"errors"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	err := wait.For(time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("For = %v after %d calls; want nil after 3", err, n)
	}
}

func TestForTimesOutWithTheLastReason(t *testing.T) {
	start := time.Now()
	err := wait.For(100*time.Millisecond, func() error { return errors.New("port closed") })
	var te *wait.TimeoutError
	if !errors.As(err, &te) || te.Last.Error() != "port closed" {
		t.Fatalf("For = %v; want a TimeoutError carrying the last reason", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Fatalf("For returned after %s; want just after its 100ms limit", took)
	}
}

func TestAbortEndsTheWaitAtOnce(t *testing.T) {
	exited := errors.New("process exited")
	n := 0
	err := wait.For(time.Minute, func() error { n++; return wait.Abort(exited) })
	if !errors.Is(err, exited) || n != 1 {
		t.Fatalf("For = %v after %d calls; want the abort reason after 1", err, n)
	}
}
