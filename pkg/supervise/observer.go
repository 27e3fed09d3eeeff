package supervise

import "time"

// Observer receives the supervisor's lifecycle events as plain values (the
// health package implements it without importing this one). Every method is
// called from the goroutine running Supervisor.Run, so it must return quickly
// and must not call Supervisor.Restart.
type Observer interface {
	// ChildStarted is called once the main child has been forked and exec'd.
	ChildStarted(pid int)
	// ChildExited is called when the main child was reaped; code is the
	// entrypoint-style code (128+N for signal N, whose name is in signal;
	// signal is "" when the child exited).
	ChildExited(pid int, code int, signal string)
	// Reaped is called with the number of other processes (orphans,
	// grandchildren) reaped in one pass, when it is not zero.
	Reaped(n int)
	// Restarting is called before waiting delay to start restart number
	// attempt (1-based, counted within the policy window).
	Restarting(attempt int, delay time.Duration)
	// Stopping is called once, before the child group is signalled to stop.
	Stopping()
	// GaveUp is called when the restart policy gives up; Run then returns code.
	GaveUp(code int)
}

// nopObserver is the Observer used when Config.Observer is nil.
type nopObserver struct{}

func (nopObserver) ChildStarted(int)              {}
func (nopObserver) ChildExited(int, int, string)  {}
func (nopObserver) Reaped(int)                    {}
func (nopObserver) Restarting(int, time.Duration) {}
func (nopObserver) Stopping()                     {}
func (nopObserver) GaveUp(int)                    {}
