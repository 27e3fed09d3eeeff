package earlysignal

import (
	"os"
	"os/signal"
	"syscall"
)

// first are the signals registered before any other, in this order: SIGTERM
// (docker stop, a pod deletion) is the one that arrives in the first
// milliseconds; the rest of the 58 registrations take about 2 ms more.
var first = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

func init() {
	for _, s := range first {
		signal.Notify(otherCh, s)
	}
	signal.Notify(chldCh, syscall.SIGCHLD)
	signal.Notify(otherCh, rest()...)
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
