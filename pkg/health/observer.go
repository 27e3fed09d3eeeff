package health

import (
	"slices"
	"time"

	"go.uber.org/zap"
)

// Info describes the running configuration for /status. It must hold no secrets.
type Info struct {
	// ConfigSource is where the config Prosody runs comes from: "pfe" (rendered from the
	// tree) or "file" (the operator's PROSODY_CONFIG_FILE, named by ConfigFile).
	ConfigSource string
	ConfigFile   string
	Profile      string
	Environment  string
	Features     []string
	ConfigHash   string
	// ConfigCheck is how the config check stage passed the file: "checked"
	// (luac and prosodyctl ran) or "cached" (the same bytes and checkers
	// passed before, so they did not run again).
	ConfigCheck string
	Hosts       []string
	// CertSources says where each host's certificate came from (mounted,
	// staged, generated, acme), keyed by host.
	CertSources map[string]string
	// Modules are the modules each host must have loaded; after READY=1 and
	// after each SetInfo the Monitor compares them with what Prosody loaded.
	Modules []HostModules
	// AdminSocket is the path of Prosody's admin socket, where the loaded
	// modules are read; "" when the admin shell is off: the check is skipped.
	AdminSocket string
}

// statusRecord is what /status reports beyond the readiness inputs. Guarded by Monitor.mu.
type statusRecord struct {
	info         Info
	stages       []stageJSON
	childStarted time.Time
	restarts     int
	lastExit     *exitJSON
	lastReload   *reloadJSON
	certs        map[string]time.Time
	acme         *acmeJSON
	probe        *probeJSON
	notifyStatus string
	database     *databaseJSON
	modules      *modulesJSON // the last check of the loaded modules
	// watchdogRestarts and watchdogLast: what RunWatchdog did.
	watchdogRestarts int
	watchdogLast     *watchdogFire
}

// StageDone records one init stage's duration and outcome (initsteps.Observer). A
// stage reported again replaces its earlier record. err's text appears in /status,
// so it must carry no secret (the project's errors never do).
func (m *Monitor) StageDone(name string, d time.Duration, err error) {
	ok := err == nil
	m.met.stageDuration.WithLabelValues(name).Set(d.Seconds())
	m.met.stageSuccess.WithLabelValues(name).Set(boolFloat(ok))
	rec := stageJSON{Name: name, DurationSeconds: d.Seconds(), OK: ok}
	if err != nil {
		rec.Error = err.Error()
	}
	m.update(func(_ *inputs, st *statusRecord) {
		i := slices.IndexFunc(st.stages, func(s stageJSON) bool { return s.Name == name })
		if i >= 0 {
			st.stages[i] = rec
			return
		}
		st.stages = append(st.stages, rec)
	})
}

// SetStagesDone marks the init stages finished: from now on readiness depends on the child.
func (m *Monitor) SetStagesDone() {
	m.update(func(in *inputs, _ *statusRecord) { in.stagesDone = true })
	m.wake()
}

// SetInfo sets the configuration summary shown by /status (copied).
func (m *Monitor) SetInfo(info Info) {
	info.Features = slices.Clone(info.Features)
	info.Hosts = slices.Clone(info.Hosts)
	info.Modules = slices.Clone(info.Modules)
	m.update(func(in *inputs, st *statusRecord) {
		st.info = info
		m.moduleCheckDue(in, st)
	})
	m.wake()
}

// moduleCheckDue marks the loaded modules to be checked again (the plan or the
// child changed). Called under m.mu.
func (m *Monitor) moduleCheckDue(in *inputs, st *statusRecord) {
	in.modulesGen++
	in.modulesMissing = ""
	planned := m.cfg.Mode == ModeProsody && len(st.info.Modules) > 0
	in.modulesPending = planned && st.info.AdminSocket != ""
	if planned && st.info.AdminSocket == "" {
		st.modules = &modulesJSON{Skipped: "the admin shell is off (admin/shell feature): the loaded modules cannot be read"}
	}
}

// ChildStarted records that the child runs as pid (supervise.Observer). It ends a
// restart and resets what the probe knew about the previous child.
func (m *Monitor) ChildStarted(pid int) {
	m.met.childUp.Set(1)
	m.met.childPID.Set(float64(pid))
	m.mu.Lock()
	inherited := m.listeners != nil && len(m.listeners.Specs()) > 0
	m.mu.Unlock()
	if inherited {
		m.met.starts.WithLabelValues("inherited").Inc()
	} else {
		m.met.starts.WithLabelValues("bound").Inc()
	}
	m.update(func(in *inputs, st *statusRecord) {
		m.moduleCheckDue(in, st)
		in.childPID, in.childRunning, in.restarting = pid, true, false
		in.probeOK, in.probeDetail = false, ""
		in.childGen++
		in.everReady, in.probeFailSince, in.wedged = false, time.Time{}, ""
		st.childStarted = time.Now()
	})
	m.wake()
}

// ChildExited records the exit of the child pid with its entrypoint-style code
// (128+N for signal N; signal is the signal's name or ""). An exit of a pid other
// than the current child is counted but does not change the state.
func (m *Monitor) ChildExited(pid int, code int, signal string) {
	m.met.exits.WithLabelValues(exitLabel(code)).Inc()
	m.update(func(in *inputs, st *statusRecord) {
		if pid != in.childPID {
			return
		}
		m.met.childUp.Set(0)
		m.met.childPID.Set(0)
		in.childRunning, in.exited, in.lastExitCode = false, true, code
		in.probeOK, in.probeDetail = false, ""
		in.childGen++
		in.everReady, in.probeFailSince, in.wedged = false, time.Time{}, ""
		st.lastExit = &exitJSON{PID: pid, Code: code, Signal: signal, At: time.Now().UTC()}
	})
}

// Reaped counts n orphaned processes reaped by the supervisor (not the main child).
func (m *Monitor) Reaped(n int) {
	if n > 0 {
		m.met.reaped.Add(float64(n))
	}
}

// Restarting records that the supervisor will start the child again (attempt
// counts from 1) after delay. State is restarting until ChildStarted.
func (m *Monitor) Restarting(attempt int, delay time.Duration) {
	m.met.restarts.Inc()
	m.update(func(in *inputs, st *statusRecord) {
		in.restarting, in.attempt, in.restartDelay = true, attempt, delay.String()
		st.restarts++
	})
}

// Stopping marks the start of shutdown. It must be called before the child is
// signalled: /readyz answers 503 "stopping" from the moment it returns.
func (m *Monitor) Stopping() {
	m.update(func(in *inputs, _ *statusRecord) { in.stopping = true })
}

// GaveUp records that the supervisor stopped restarting and will exit with code:
// /livez answers 503 from now on.
func (m *Monitor) GaveUp(code int) {
	m.update(func(in *inputs, _ *statusRecord) { in.gaveUp, in.gaveUpCode = true, code })
}

// ReloadStarted marks a reload in progress: /readyz answers 503 "reloading" until ReloadDone.
func (m *Monitor) ReloadStarted() {
	m.update(func(in *inputs, _ *statusRecord) { in.reloading = true })
}

// ReloadDone ends a reload with its outcome: "applied", "unchanged", "refused",
// "restarted", "pending-restart" (a restart is needed but not allowed),
// "skipped" (stopped before it was tried) or "failed" (anything else is
// counted as "failed" and logged), how
// long it took, and its error (nil on success; its text appears in /status). With
// UseNotify, a reload Prosody performed stays "reloading" until its READY=1.
func (m *Monitor) ReloadDone(outcome string, d time.Duration, err error) {
	if !slices.Contains(reloadOutcomes(), outcome) {
		m.log.Warn("unknown reload outcome counted as failed", zap.String("outcome", outcome))
		outcome = "failed"
	}
	m.met.reloads.WithLabelValues(outcome).Inc()
	m.met.reloadSeconds.Observe(d.Seconds())
	switch outcome {
	case "applied", "restarted", "unchanged":
		m.met.reloadLastOK.SetToCurrentTime()
	}
	rec := &reloadJSON{Outcome: outcome, DurationSeconds: d.Seconds(), At: time.Now().UTC()}
	if err != nil {
		rec.Error = err.Error()
	}
	m.update(func(in *inputs, st *statusRecord) {
		in.reloading = false
		st.lastReload = rec
	})
	m.wake()
}

// RenderDone records the duration of one config render.
func (m *Monitor) RenderDone(d time.Duration) { m.met.renderSeconds.Observe(d.Seconds()) }

// CertExpiry records the NotAfter of the certificate used for host.
func (m *Monitor) CertExpiry(host string, notAfter time.Time) {
	m.met.certExpiry.WithLabelValues(host).Set(float64(notAfter.Unix()))
	m.update(func(_ *inputs, st *statusRecord) {
		if st.certs == nil {
			st.certs = map[string]time.Time{}
		}
		st.certs[host] = notAfter.UTC()
	})
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ACMERenewal records one attempt to get an ACME certificate (acme.Observer):
// outcome "success" or "failure"; err (nil on success) is shown in /status as
// the last error and must hold no secret.
func (m *Monitor) ACMERenewal(outcome string, err error) {
	m.met.acmeRenewals.WithLabelValues(outcome).Inc()
	now := time.Now().UTC()
	if err == nil {
		m.met.acmeLastSuccess.Set(float64(now.Unix()))
	}
	m.update(func(_ *inputs, st *statusRecord) {
		if st.acme == nil {
			st.acme = &acmeJSON{}
		}
		st.acme.LastOutcome, st.acme.LastAt = outcome, &now
		if err != nil {
			st.acme.LastError, st.acme.LastErrorAt = err.Error(), &now
			st.acme.Failures++
		} else {
			st.acme.LastSuccessAt = &now
			st.acme.Failures = 0
		}
	})
}

// ACMENextRenewal records when the next ACME order is due (acme.Observer).
func (m *Monitor) ACMENextRenewal(at time.Time) {
	m.met.acmeNext.Set(float64(at.Unix()))
	at = at.UTC()
	m.update(func(_ *inputs, st *statusRecord) {
		if st.acme == nil {
			st.acme = &acmeJSON{}
		}
		st.acme.NextRenewal = &at
	})
}
