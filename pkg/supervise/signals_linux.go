package supervise

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// reexecEnv marks the one re-exec Notify does to clear the inherited signal
// mask; Notify removes it from the environment again.
const reexecEnv = "SUPERVISE_SIGMASK_RESET"

// Signals is the entrypoint's registration for every catchable signal. Create
// it with Notify as the first statement of main and hand it to Config.Signals.
// Only one Supervisor may read from it.
type Signals struct {
	// chld receives SIGCHLD. Its own one-slot channel: a pending SIGCHLD
	// guarantees a later full reap pass, so dropping more of them loses
	// nothing, and a burst of other signals can never crowd it out.
	chld chan os.Signal
	// other receives every other signal that is forwarded or intercepted.
	other chan os.Signal
	// note says what Notify did about the inherited signal state; Run logs it.
	note string
}

// Notify registers for every catchable signal (SIGKILL and SIGSTOP cannot
// be caught; SIGURG is left to the Go runtime, which preempts goroutines
// with it; signals 32 and 33 belong to the C library and the runtime). From
// then on SIGTSTP, SIGTTIN and SIGTTOU no longer stop the process, and
// SIGINT/SIGTERM no longer kill it: the Supervisor decides.
//
// Signal state guarantees for children (checked by the tests through
// /proc/<pid>/status):
//   - Blocked mask: Go forks children with the mask the program inherited at
//     exec, whatever threads unblock later. So the first call of Notify in a
//     process re-execs the same binary (same pid, args and environment)
//     from a thread whose mask is empty; that call does not return. When
//     the re-exec is impossible (no /proc), Notify continues and Run logs
//     why: children then inherit the mask the entrypoint was started with.
//   - Ignored signals: a signal ignored at exec stays ignored in children
//     (exec keeps SIG_IGN); registering a handler for every signal here
//     makes the kernel reset each to SIG_DFL at the child's exec.
//
// Signals that arrive before Notify get the Go runtime's default (SIGTERM
// makes PID 1 exit with 2), so call Notify before anything else in main.
func Notify() *Signals {
	var note string
	if os.Getenv(reexecEnv) == "" {
		// Only returns on failure.
		note = fmt.Sprintf("signal mask not reset, children inherit the entrypoint's blocked signals: %v", reexecEmptyMask())
	} else if err := os.Unsetenv(reexecEnv); err != nil {
		note = fmt.Sprintf("unset %s: %v", reexecEnv, err)
	}
	s := notify()
	s.note = note
	return s
}

// notify registers the channels without the re-exec (tests running the
// supervisor inside the test binary use it directly).
func notify() *Signals {
	s := &Signals{
		chld:  make(chan os.Signal, 1),
		other: make(chan os.Signal, 64),
	}
	signal.Notify(s.chld, unix.SIGCHLD)
	signal.Notify(s.other, catchable()...)
	return s
}

// Stop ends the registration: signals get their default behaviour again.
// Call it only after Run has returned.
func (s *Signals) Stop() {
	signal.Stop(s.chld)
	signal.Stop(s.other)
}

// catchable lists every signal Notify registers on the other channel.
func catchable() []os.Signal {
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

// reexecEmptyMask execs /proc/self/exe with the same arguments from a thread
// whose signal mask is empty, so the new image (and every child it forks)
// starts with nothing blocked. It returns only on failure.
func reexecEmptyMask() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil); err != nil {
		return fmt.Errorf("clear thread signal mask: %w", err)
	}
	env := append(os.Environ(), reexecEnv+"=1")
	if err := syscall.Exec("/proc/self/exe", os.Args, env); err != nil {
		return fmt.Errorf("re-exec /proc/self/exe: %w", err)
	}
	return nil
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
