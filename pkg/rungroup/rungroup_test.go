package rungroup

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The main part's end stops the others, and Run waits for them.
func TestMainEndsGroup(t *testing.T) {
	var g Group
	stopped := make(chan struct{})
	g.Go("worker", func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return ctx.Err()
	})
	g.Main("main", func(context.Context) error { return nil })
	if err := g.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("Run returned before the worker stopped")
	}
}

// A failing part ends the group, and Run names it; a part that is done
// without error does not.
func TestFailureEndsGroup(t *testing.T) {
	var g Group
	boom := errors.New("boom")
	g.Go("oneshot", func(context.Context) error { return nil })
	g.Go("health", func(context.Context) error { return boom })
	mainErr := make(chan error, 1)
	g.Main("supervisor", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			mainErr <- ctx.Err()
		case <-time.After(10 * time.Second):
			mainErr <- errors.New("not cancelled")
		}
		return nil
	})
	err := g.Run(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Part != "health" || !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the health part's boom", err)
	}
	if err := <-mainErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("main part: %v, want cancelled", err)
	}
}

// Errors parts return once the group is ending are not failures.
func TestErrorsAfterCancelAreNotFailures(t *testing.T) {
	var g Group
	g.Go("watcher", func(ctx context.Context) error { <-ctx.Done(); return errors.New("closed") })
	g.Main("main", func(context.Context) error { return nil })
	if err := g.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}
