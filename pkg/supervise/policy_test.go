package supervise

import (
	"strings"
	"testing"
	"time"
)

func TestParseRestartMode(t *testing.T) {
	for in, want := range map[string]RestartMode{"": ModeNever, "never": ModeNever, "on-failure": ModeOnFailure, "always": ModeAlways} {
		if got, err := ParseRestartMode(in); err != nil || got != want {
			t.Errorf("ParseRestartMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseRestartMode("Always")
	if err == nil || !strings.Contains(err.Error(), `"Always"`) || !strings.Contains(err.Error(), "on-failure") {
		t.Errorf("ParseRestartMode(Always) error = %v, want it to name the value and the accepted ones", err)
	}
}

func TestPolicyDelayAndWindow(t *testing.T) {
	p, err := Policy{Mode: ModeOnFailure}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if p.Max != 5 || p.Window != time.Minute || p.Backoff != time.Second || p.MaxBackoff != 30*time.Second {
		t.Fatalf("defaults = %+v", p)
	}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 60: 30 * time.Second} {
		if got := p.delay(attempt); got != want {
			t.Errorf("delay(%d) = %s, want %s", attempt, got, want)
		}
	}
	var l restartLog
	now := time.Unix(1000, 0)
	for i := 1; i <= 5; i++ {
		if a, ok := l.next(p, now); !ok || a != i {
			t.Fatalf("restart %d: attempt %d ok %v", i, a, ok)
		}
	}
	if _, ok := l.next(p, now.Add(time.Second)); ok {
		t.Error("a sixth restart within the window was allowed")
	}
	if a, ok := l.next(p, now.Add(61*time.Second)); !ok || a != 1 {
		t.Errorf("after the window: attempt %d ok %v, want a fresh count", a, ok)
	}
	if _, err := (Policy{Max: -1}).normalize(); err == nil {
		t.Error("negative Max accepted")
	}
}
