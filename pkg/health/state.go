package health

import (
	"fmt"
	"time"
)

// State is the readiness state of the supervised server. The Monitor holds the
// current one in an atomic value; the prosody_pfe_ready_state gauge mirrors it.
type State int32

// The states, in the order the gauge lists them.
const (
	// StateStarting: init stages running, the child not yet started, or Prosody not
	// yet answering (no READY=1, no stream features on c2s).
	StateStarting State = iota
	// StateReady: stages done, child running and (prosody mode) answering c2s.
	StateReady
	// StateReloading: a reload is in progress (ReloadStarted, or RELOADING=1 until READY=1).
	StateReloading
	// StateRestarting: the child exited and the supervisor will start it again.
	StateRestarting
	// StateStopping: shutdown began (Stopping() or STOPPING=1); the child may still run.
	StateStopping
	// StateStopped: shutdown began and the child has exited.
	StateStopped
	// StateFailed: the supervisor gave up (GaveUp); /livez answers 503.
	StateFailed
	// StateDegraded: Prosody answers c2s, but a module of the plan is not
	// loaded (Info.Modules), or the database it stores accounts in (PostgreSQL,
	// Config.DBAddr) does not accept connections, so nobody can log in;
	// /readyz answers 503 with the reason.
	StateDegraded
)

// numStates is the number of defined states; they are 0..numStates-1.
const numStates = int(StateDegraded) + 1

// States lists every state in the gauge's order: the values of the `state`
// label of prosody_pfe_ready_state.
func States() []State {
	out := make([]State, numStates)
	for i := range out {
		out[i] = State(i)
	}
	return out
}

// String returns the lowercase name used in /readyz, /status and metric labels.
func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateReloading:
		return "reloading"
	case StateRestarting:
		return "restarting"
	case StateStopping:
		return "stopping"
	case StateStopped:
		return "stopped"
	case StateFailed:
		return "failed"
	case StateDegraded:
		return "degraded"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// Readiness is one immutable snapshot of the state and why.
type Readiness struct {
	State State
	// Reason is the human-readable cause, e.g. "starting: waiting for c2s: connect
	// 127.0.0.1:5222: connection refused"; "ready" when ready.
	Reason string
	// Wedged is non-empty from the moment the watchdog found the child wedged
	// until that child is gone or answers again: /livez answers 503 with it.
	Wedged string
}

// Answers reports whether Prosody is up and answering c2s: ready, or degraded
// (answering while its database is unreachable). Signals and reloads are safe then.
func (r Readiness) Answers() bool { return r.State == StateReady || r.State == StateDegraded }

// inputs is everything readiness is derived from. Guarded by Monitor.mu.
type inputs struct {
	stagesDone   bool
	childPID     int
	childRunning bool
	lastExitCode int
	exited       bool // the child has exited at least once
	restarting   bool
	attempt      int
	restartDelay string
	stopping     bool
	gaveUp       bool
	gaveUpCode   int
	reloading    bool // between ReloadStarted and ReloadDone

	notify notifyState

	probeOK     bool
	probeDetail string
	// childGen is bumped when a child starts or exits; a probe records the
	// generation it began in (probeGen, 0 while none runs) and its answer
	// counts only if the child is still the same, so a probe of the previous
	// child finishing after a restart never makes the new one ready.
	childGen int
	probeGen int
	// probeAgain: READY=1 came while a probe of this child was running; if
	// that probe fails, the next one runs at once instead of after the backoff.
	probeAgain bool

	// The watchdog's view (see serving and watchdogDue).
	everReady      bool      // the current child was ready (or degraded) at least once
	serving        bool      // serving(in) as of the last update
	servingSince   time.Time // when serving last turned true
	probeFailSince time.Time // start of the first failed probe of the current run; zero while probes pass
	wedged         string    // the watchdog's reason while it judges the current child wedged

	// The loaded-modules check (see Monitor.checkModules).
	modulesGen     int    // bumped when the plan or the child changes; a check of an older one is dropped
	modulesPending bool   // a check is due and readiness waits for it
	modulesMissing string // what the last check found missing ("" when nothing)

	// The database check (PostgreSQL storage only).
	dbDown      bool // FailureThreshold checks in a row found it unreachable
	dbDetail    string
	dbDownSince time.Time // start of the first failed check of the current run
}

// notifyState is what the child said over NOTIFY_SOCKET. It applies only while
// pid is the current child (or 0 when the kernel gave no sender pid), so a stale
// READY=1 from an earlier child never makes a new one ready.
type notifyState struct {
	pid       int
	ready     bool
	reloading bool
	stopping  bool
}

// derive computes readiness from inputs. It is pure: the table tests call it directly.
func derive(in inputs, plain, useNotify bool) Readiness {
	r := deriveState(in, plain, useNotify)
	r.Wedged = in.wedged
	return r
}

func deriveState(in inputs, plain, useNotify bool) Readiness {
	n := in.notify
	if n.pid != 0 && n.pid != in.childPID {
		n = notifyState{}
	}
	switch {
	case in.gaveUp:
		return Readiness{State: StateFailed, Reason: fmt.Sprintf("failed: supervisor gave up (exit code %d)", in.gaveUpCode)}
	case (in.stopping || n.stopping) && !in.childRunning && in.exited:
		return Readiness{State: StateStopped, Reason: "stopped"}
	case in.stopping:
		return Readiness{State: StateStopping, Reason: "stopping"}
	case n.stopping && in.childRunning:
		return Readiness{State: StateStopping, Reason: "stopping: prosody said STOPPING=1"}
	case in.restarting:
		return Readiness{State: StateRestarting, Reason: fmt.Sprintf("restarting: attempt %d after %s", in.attempt, in.restartDelay)}
	case !in.stagesDone:
		return Readiness{State: StateStarting, Reason: "starting: init stages running"}
	case !in.childRunning && in.exited:
		return Readiness{State: StateRestarting, Reason: fmt.Sprintf("restarting: child exited with code %d", in.lastExitCode)}
	case !in.childRunning:
		return Readiness{State: StateStarting, Reason: "starting: waiting for the child to start"}
	case plain && !useNotify:
		return Readiness{State: StateReady, Reason: "ready"}
	case in.reloading || (useNotify && n.reloading):
		return Readiness{State: StateReloading, Reason: "reloading"}
	case useNotify && !n.ready:
		return Readiness{State: StateStarting, Reason: "starting: waiting for READY=1 on NOTIFY_SOCKET"}
	case plain:
		return Readiness{State: StateReady, Reason: "ready"}
	case !in.probeOK:
		detail := in.probeDetail
		if detail == "" {
			detail = "not probed yet"
		}
		return Readiness{State: StateStarting, Reason: "starting: waiting for c2s: " + detail}
	case in.modulesPending:
		return Readiness{State: StateStarting, Reason: "starting: checking the loaded modules against the plan"}
	// An unreachable database comes first: it is the cause of the modules
	// that could not load their storage.
	case in.dbDown:
		return Readiness{State: StateDegraded, Reason: fmt.Sprintf("degraded: database unreachable since %s (%s): Prosody answers but cannot log anyone in",
			in.dbDownSince.UTC().Format(time.RFC3339), in.dbDetail)}
	case in.modulesMissing != "":
		return Readiness{State: StateDegraded, Reason: "degraded: modules of the plan not loaded: " + in.modulesMissing}
	}
	return Readiness{State: StateReady, Reason: "ready"}
}
