package earlysignal

import (
	"os"
	"os/signal"
	"syscall"
)

// first are the signals registered before any other, in this order: SIGTERM
// (docker stop, a pod deletion) is the one that arrives in the first
// milliseconds; the rest of the 58 registrations take about 1-2 ms more.
var first = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

// init registers first and SIGCHLD before it returns, and the rest from a
// goroutine that runs while the other packages initialise: each
// registration is a round trip to the runtime's signal-mask thread (two
// thread wake-ups, ~20 µs idle, far more when the CPUs are busy), so 58 of
// them in a row delayed main by 1.2-6 ms; beside the other packages' init
// they cost almost nothing. Take waits for the goroutine, so main still
// starts with every signal registered.
func init() {
	for _, s := range first {
		signal.Notify(otherCh, s)
	}
	signal.Notify(chldCh, syscall.SIGCHLD)
	go func() {
		defer close(restDone)
		signal.Notify(otherCh, rest()...)
	}()
}

// Signals lists every signal registered on Take's other channel: 1 to 64
// except SIGKILL and SIGSTOP (they cannot be caught), SIGURG (the Go runtime
// preempts goroutines with it), SIGCHLD (its own channel) and 32 and 33 (the
// C library's and the runtime's). supervise.Adopt expects exactly these.
func Signals() []os.Signal {
	return append(append([]os.Signal{}, first...), rest()...)
}

// rest is Signals without first, in signal-number order.
func rest() []os.Signal {
	var sigs []os.Signal
	for n := syscall.Signal(1); n <= 64; n++ {
		switch n {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGURG, syscall.SIGCHLD, 32, 33,
			syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT:
			continue
		}
		sigs = append(sigs, n)
	}
	return sigs
}
