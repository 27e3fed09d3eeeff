package health

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// serving reports whether Prosody should be answering now: the current child
// has been ready (or degraded) since it started, and no start-up, reload,
// restart backoff, stop or give-up is under way. Only then can a failing probe
// mean Prosody is wedged.
func serving(in inputs) bool {
	n := in.notify
	if n.pid != 0 && n.pid != in.childPID {
		n = notifyState{}
	}
	return in.stagesDone && in.childRunning && in.everReady &&
		!in.stopping && !in.gaveUp && !in.restarting && !in.reloading &&
		!n.reloading && !n.stopping
}

// watchdogDue is the watchdog's decision, pure so that tables can test it: fire
// when the readiness probe has failed for timeout while Prosody should be
// serving. The clock starts at the first failed probe of the current run of
// failures, or when Prosody last began serving (its first ready, the end of a
// reload), whichever is later; a probe that passes stops it. It fires only once
// readiness itself dropped (FailureThreshold failures in a row), once per
// wedge. Otherwise it returns how long until it could fire (0: not counting).
func watchdogDue(in inputs, now time.Time, timeout time.Duration) (fire bool, wait time.Duration) {
	if timeout <= 0 || !in.serving || in.probeOK || in.probeFailSince.IsZero() || in.wedged != "" {
		return false, 0
	}
	since := in.probeFailSince
	if in.servingSince.After(since) {
		since = in.servingSince
	}
	if left := timeout - now.Sub(since); left > 0 {
		return false, left
	}
	return true, 0
}

// watchdogJSON is /status's watchdog part.
type watchdogJSON struct {
	TimeoutSeconds float64       `json:"timeout_seconds"`
	Restarts       int           `json:"restarts"`
	Last           *watchdogFire `json:"last,omitempty"`
}

type watchdogFire struct {
	PID    int       `json:"pid"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// RunWatchdog restarts a wedged Prosody until ctx ends. When the readiness
// probe has failed for Config.WatchdogTimeout while Prosody should be serving
// (see watchdogDue: never during start-up, a reload, a restart backoff or a
// stop), it logs why, counts prosody_pfe_watchdog_restarts_total, makes /livez
// answer 503 with the reason until that child is gone or answers again, and
// calls restart with the wedged child's pid (supervise.Supervisor.RestartChild:
// it must act only while that pid is the running child, and may block until
// the new child started). It fires at most once per wedge; restart's error is
// logged, not returned. With WatchdogTimeout 0, or in ModePlain, it only waits
// for ctx. It returns nil when ctx ends.
func (m *Monitor) RunWatchdog(ctx context.Context, restart func(pid int) error) error {
	timeout := m.cfg.WatchdogTimeout
	if timeout <= 0 || m.cfg.Mode == ModePlain {
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		now := time.Now()
		m.mu.Lock()
		fire, wait := watchdogDue(m.in, now, timeout)
		changed, pid, detail := m.changed, m.in.childPID, m.in.probeDetail
		m.mu.Unlock()
		if fire {
			reason := fmt.Sprintf("wedged: prosody (pid %d) failed its readiness probe for over %s while it should be serving (%s); the watchdog restarts it",
				pid, timeout, detail)
			m.met.watchdogRestarts.Inc()
			m.log.Warn("watchdog: prosody is wedged, restarting it", zap.Int("pid", pid), zap.Duration("timeout", timeout),
				zap.String("last_probe", detail))
			m.update(func(in *inputs, st *statusRecord) {
				in.wedged = reason
				st.watchdogRestarts++
				st.watchdogLast = &watchdogFire{PID: pid, At: now.UTC(), Reason: reason}
			})
			if err := restart(pid); err != nil {
				m.log.Warn("watchdog: restart not done", zap.Int("pid", pid), zap.Error(err))
			}
			continue
		}
		var timerC <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-timerC:
		}
		timer.Stop()
	}
}
