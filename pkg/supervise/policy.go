// Package supervise owns the processes of the entrypoint: it registers for
// every catchable signal, starts the main child in its own process group,
// forwards signals to it, is the one reaper of every child (as PID 1 or as a
// child subreaper), stops the child group gracefully, restarts it by policy
// and turns its end into the entrypoint's exit code.
//
// Only this package waits for children: a second waiter (exec.Cmd.Wait,
// os.Process.Wait) would race the wait4(-1) reaper and lose exit statuses.
package supervise

import (
	"fmt"
	"time"
)

// RestartMode says when a child that ended on its own is started again.
type RestartMode string

// The restart modes. The zero value "" means ModeNever.
const (
	ModeNever     RestartMode = "never"      // never restart; Run returns the child's code
	ModeOnFailure RestartMode = "on-failure" // restart when the code is not 0
	ModeAlways    RestartMode = "always"     // restart whatever the code
)

// Policy defaults, used for zero fields of Policy.
const (
	DefaultMax        = 5
	DefaultWindow     = 60 * time.Second
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 30 * time.Second
)

// ParseRestartMode parses "never", "on-failure" or "always". The empty
// string is "never".
func ParseRestartMode(s string) (RestartMode, error) {
	switch RestartMode(s) {
	case "", ModeNever:
		return ModeNever, nil
	case ModeOnFailure, ModeAlways:
		return RestartMode(s), nil
	}
	return "", fmt.Errorf("restart mode %q is not valid: accepted values are never, on-failure, always", s)
}

// Policy is the restart policy. Zero fields take the defaults above.
type Policy struct {
	// Mode says when to restart; "" is never.
	Mode RestartMode
	// Max is how many restarts are allowed within Window; one more crash
	// ends Run with the child's last code. 0 means DefaultMax.
	Max int
	// Window is the sliding window over which restarts are counted; a child
	// that ran longer than Window without a restart starts a fresh count.
	Window time.Duration
	// Backoff is the delay before the first restart in a window; it doubles
	// for each further restart, capped at MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// normalize validates p and fills in defaults.
func (p Policy) normalize() (Policy, error) {
	mode, err := ParseRestartMode(string(p.Mode))
	if err != nil {
		return p, err
	}
	p.Mode = mode
	if p.Max < 0 || p.Window < 0 || p.Backoff < 0 || p.MaxBackoff < 0 {
		return p, fmt.Errorf("restart policy %+v has a negative value: max, window and backoffs must be >= 0", p)
	}
	if p.Max == 0 {
		p.Max = DefaultMax
	}
	if p.Window == 0 {
		p.Window = DefaultWindow
	}
	if p.Backoff == 0 {
		p.Backoff = DefaultBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.MaxBackoff < p.Backoff {
		p.MaxBackoff = p.Backoff
	}
	return p, nil
}

// wants reports whether the policy restarts a child that ended with code.
func (p Policy) wants(code int) bool {
	switch p.Mode {
	case ModeAlways:
		return true
	case ModeOnFailure:
		return code != 0
	}
	return false
}

// delay is the backoff before restart number attempt (1-based) in a window.
func (p Policy) delay(attempt int) time.Duration {
	d := p.Backoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

// restartLog counts restarts within the policy window.
type restartLog struct {
	times []time.Time
}

// next records a restart at now and returns its attempt number within the
// window, or ok=false when max restarts already happened within the window.
func (l *restartLog) next(p Policy, now time.Time) (attempt int, ok bool) {
	kept := l.times[:0]
	for _, t := range l.times {
		if now.Sub(t) < p.Window {
			kept = append(kept, t)
		}
	}
	l.times = kept
	if len(l.times) >= p.Max {
		return len(l.times), false
	}
	l.times = append(l.times, now)
	return len(l.times), true
}
