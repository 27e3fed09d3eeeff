package watch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/prosody-pfe/prosody-pfe/pkg/watch"
)

// waitLimit bounds every wait for a Change; the watcher normally answers in about one debounce.
const waitLimit = 5 * time.Second

// start runs a Watcher until the test ends, then checks that Run returned nil and closed
// Changes.
func start(t testing.TB, cfg watch.Config) *watch.Watcher {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	w, err := watch.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil after cancel", err)
			}
		case <-time.After(waitLimit):
			t.Errorf("Run did not return within %s of cancel", waitLimit)
		}
		for range w.Changes() { // must be closed, so this ends
		}
	})
	waitWatching(t, w, cfg)
	return w
}

// waitWatching makes sure Run has set up its watches before the test changes anything: it
// touches a probe file in the first watched directory until a Change for it arrives, then
// removes the probe and consumes that Change too.
func waitWatching(t testing.TB, w *watch.Watcher, cfg watch.Config) {
	t.Helper()
	if len(cfg.Dirs) == 0 {
		t.Fatalf("test config needs a Dirs entry to probe readiness (tests of Files add a spare one)")
	}
	probe := filepath.Join(cfg.Dirs[0], "watch-probe")
	if _, err := os.Stat(cfg.Dirs[0]); err != nil {
		t.Fatalf("Dirs[0] %s must exist to probe readiness: %v", cfg.Dirs[0], err)
	}
	deadline := time.Now().Add(waitLimit)
	for i := 0; ; i++ {
		writeFile(t, probe, fmt.Sprint(i))
		select {
		case ch := <-w.Changes():
			if slices.Contains(ch.Paths, probe) {
				if err := os.Remove(probe); err != nil {
					t.Fatal(err)
				}
				waitFor(t, w, probe)
				return
			}
		case <-time.After(300 * time.Millisecond): // retry interval of a deadline-bounded wait; longer than a debounce so retries do not extend it
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher not ready within %s", waitLimit)
		}
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// waitFor reads Changes until one contains want, and returns it.
func waitFor(t testing.TB, w *watch.Watcher, want string) watch.Change {
	t.Helper()
	deadline := time.After(waitLimit)
	var seen []watch.Change
	for {
		select {
		case ch, ok := <-w.Changes():
			if !ok {
				t.Fatalf("Changes closed while waiting for %s", want)
			}
			if slices.Contains(ch.Paths, want) {
				return ch
			}
			seen = append(seen, ch)
		case <-deadline:
			t.Fatalf("no Change with %s within %s; got %v", want, waitLimit, seen)
		}
	}
}

// noChange asserts that no Change arrives within d.
func noChange(t testing.TB, w *watch.Watcher, d time.Duration) {
	t.Helper()
	select {
	case ch := <-w.Changes():
		t.Fatalf("unexpected Change %v", ch.Paths)
	case <-time.After(d):
	}
}
