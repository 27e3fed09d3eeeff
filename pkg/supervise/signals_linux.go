package supervise

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Signals is the entrypoint's registration for every catchable signal. Create
// it with Notify (or Adopt an earlier registration) and hand it to
// Config.Signals.
// Only one Supervisor may read from it.
type Signals struct {
	// chld receives SIGCHLD. Its own one-slot channel: a pending SIGCHLD
	// guarantees a later full reap pass, so dropping more of them loses
	// nothing, and a burst of other signals can never crowd it out.
	chld chan os.Signal
	// other receives every other signal that is forwarded or intercepted.
	other chan os.Signal
}

// Notify registers for every catchable signal (SIGKILL and SIGSTOP cannot
// be caught; SIGURG is left to the Go runtime, which preempts goroutines
// with it; signals 32 and 33 belong to the C library and the runtime). From
// then on SIGTSTP, SIGTTIN and SIGTTOU no longer stop the process, and
// SIGINT/SIGTERM no longer kill it: the Supervisor decides.
//
// Signal state guarantees for children (checked by the tests through
// /proc/<pid>/status, with an entrypoint started by a parent that blocked
// and ignored signals):
//   - Ignored signals: a signal ignored at exec stays ignored in children
//     (exec keeps SIG_IGN). Registering a handler for every signal here
//     makes the kernel reset each one to SIG_DFL at the child's exec.
//   - Blocked mask: Go's fork gives the child the mask of the forking
//     thread, which starts as the mask the entrypoint inherited. The
//     Supervisor forks from a locked thread whose mask it empties first,
//     so children start with nothing blocked.
//
// Signals that arrive before Notify get the Go runtime's default (SIGTERM
// makes PID 1 exit with 2), so call Notify before anything else in main, or
// better, register during package initialisation and Adopt the channels.
func Notify() *Signals {
	chld, other := make(chan os.Signal, 1), make(chan os.Signal, 64)
	signal.Notify(chld, unix.SIGCHLD)
	signal.Notify(other, Catchable()...)
	return Adopt(chld, other)
}

// Adopt takes over a registration made earlier (the entrypoint makes it in
// package earlysignal's init, a few milliseconds sooner than main could):
// chld must be registered for SIGCHLD alone, other for every signal of
// Catchable. Adopt gives the same guarantees as Notify from then on. Adopt
// each registration once; Stop ends it.
func Adopt(chld, other chan os.Signal) *Signals {
	resetIgnoredReserved()
	return &Signals{chld: chld, other: other}
}

// resetIgnoredReserved sets signals 32 and 33 back to their default action
// when the entrypoint inherited them ignored. signal.Notify cannot take them
// (the C library reserves them; Go leaves them alone), so an ignored state
// would reach every child through exec. Nothing sends them to a static Go
// program, so the default action is safe here.
func resetIgnoredReserved() {
	for _, sig := range []uintptr{32, 33} {
		var old [4]uint64 // the kernel's struct sigaction; handler first
		var dfl [4]uint64 // SIG_DFL, no flags, empty mask
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
			continue
		}
		if old[0] == 1 { // SIG_IGN
			unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
		}
	}
}

// Stop ends the registration: signals get their default behaviour again.
// Call it only after Run has returned.
func (s *Signals) Stop() {
	signal.Stop(s.chld)
	signal.Stop(s.other)
}

// Catchable lists every signal Notify registers on the other channel, in
// signal-number order.
func Catchable() []os.Signal {
	var sigs []os.Signal
	for n := syscall.Signal(1); n <= 64; n++ {
		switch n {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGURG, unix.SIGCHLD, 32, 33:
			continue
		}
		sigs = append(sigs, n)
	}
	return sigs
}

// signalName is the conventional name of sig ("SIGTERM"), or "signal N".
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// toGroup reports whether a forwarded sig goes to the child's whole process
// group: the termination signals, so a `sh -c` wrapper cannot swallow them.
func toGroup(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP:
		return true
	}
	return false
}
