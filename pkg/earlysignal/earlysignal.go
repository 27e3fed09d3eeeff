// Package earlysignal registers the entrypoint for every catchable signal
// while the program is still initialising its packages, long before main.
//
// A Go program's runtime installs its own signal handlers before any package
// initialisation; a SIGTERM that arrives between then and signal.Notify ends
// a Go process with exit status 2, and the kernel does not even spare PID 1.
// Go initialises packages in dependency order, ties broken by import path, so
// a package that imports only os/signal and lives under the module path runs
// right after os/signal, ahead of the metrics, logging and protobuf packages
// that would otherwise come first (milliseconds of init and page faults).
//
// Import it for its side effect from the entrypoint's main package only
// (`import _ ".../pkg/earlysignal"`), and hand its channels to
// supervise.Adopt with Take. A test binary or a library must not import it:
// it takes SIGINT and SIGTERM away from the default action for the whole
// process.
package earlysignal

import (
	"os"
	"sync/atomic"
)

var (
	// chldCh receives SIGCHLD only: a one-slot channel, since one pending
	// SIGCHLD already guarantees a full reap pass.
	chldCh = make(chan os.Signal, 1)
	// otherCh receives every other catchable signal.
	otherCh = make(chan os.Signal, 64)
	// restDone is closed once every signal of Signals is registered: the
	// first few are registered by init itself, the rest by a goroutine that
	// init starts (see the Linux init) and Take waits for.
	restDone = make(chan struct{})
	taken    atomic.Bool
)

// Take hands over the channels registered at init: chld receives SIGCHLD,
// other every signal of Signals. Call it once, from main; a second call
// panics, since two readers would each lose signals to the other. The caller
// owns the registration from then on (signal.Stop ends it). Take blocks
// until every signal of Signals is registered (at most the ~1 ms that the
// registrations after the first few take; they usually end during the
// initialisation of other packages).
func Take() (chld, other chan os.Signal) {
	if !taken.CompareAndSwap(false, true) {
		panic("earlysignal: Take called twice; the registration has one owner")
	}
	<-restDone
	return chldCh, otherCh
}
