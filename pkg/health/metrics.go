package health

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "prosody_pfe"

// reloadOutcomes returns the accepted ReloadDone outcomes: the reloads_total labels.
// "pending-restart": the change needs a restart that PROSODY_RELOAD_RESTART=never forbids;
// "skipped": the entrypoint stopped, or Prosody never got ready, before the reload was tried.
func reloadOutcomes() []string {
	return []string{"applied", "unchanged", "refused", "restarted", "pending-restart", "failed", "skipped"}
}

// metrics are the Monitor's collectors, all on its private registry.
type metrics struct {
	stageDuration *prometheus.GaugeVec
	stageSuccess  *prometheus.GaugeVec
	childUp       prometheus.Gauge
	childPID      prometheus.Gauge
	restarts      prometheus.Counter
	// starts counts the child's starts by who holds its listening sockets.
	starts        *prometheus.CounterVec
	exits         *prometheus.CounterVec
	readyState    *prometheus.GaugeVec
	reloads       *prometheus.CounterVec
	renderSeconds prometheus.Histogram
	reloadSeconds prometheus.Histogram
	reloadLastOK  prometheus.Gauge
	probeSeconds  prometheus.Histogram
	probeFailures prometheus.Counter
	reaped        prometheus.Counter
	notifyMsgs    *prometheus.CounterVec
	notifyDropped prometheus.Counter
	certExpiry    *prometheus.GaugeVec
	startTime     prometheus.Gauge
	// watchdogRestarts counts RunWatchdog's restarts of a wedged Prosody.
	watchdogRestarts prometheus.Counter
	// httpConns and httpRefused are the health port's connections (limitListener).
	httpConns   prometheus.Gauge
	httpRefused prometheus.Counter
	// acmeRenewals, acmeNext and acmeLastSuccess are the ACME certificate's
	// orders while running (ACMERenewal, ACMENextRenewal).
	acmeRenewals    *prometheus.CounterVec
	acmeNext        prometheus.Gauge
	acmeLastSuccess prometheus.Gauge
	// planModules counts, per host, the modules of the plan and those of them
	// not loaded (setPlanModules); planHosts are the hosts it has series for.
	// Only the probe loop writes them.
	planModules *prometheus.GaugeVec
	planHosts   map[string]bool
	// dbUp is the database check's last result; registered only with a database to check.
	dbUp prometheus.Gauge
}

// newMetrics registers the Monitor's collectors on reg; withDB adds the
// database gauge, which only means something when there is a database to check.
func newMetrics(reg *prometheus.Registry, withDB bool) (*metrics, error) {
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &metrics{
		stageDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "stage_duration_seconds",
			Help: "Duration of the last run of each init stage."}, []string{"stage"}),
		stageSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "stage_success",
			Help: "1 if the last run of the init stage succeeded, 0 if it failed."}, []string{"stage"}),
		childUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "child_up",
			Help: "1 while the supervised child process runs."}),
		childPID: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "child_pid",
			Help: "Process id of the running child, 0 when none."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "child_restarts_total",
			Help: "Restarts of the child by the supervisor."}),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "child_starts_total",
			Help: "Starts of the child (the first and every restart) by its listening sockets: inherited (held by the entrypoint across restarts, PROSODY_SOCKET_ACTIVATION) or bound (by the child itself; connections are refused while it restarts)."}, []string{"listeners"}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "child_exits_total",
			Help: "Child exits by exit code (128+N for signal N; codes above 255 count as \"other\")."}, []string{"code"}),
		readyState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "ready_state",
			Help: "1 for the current readiness state, 0 for the others."}, []string{"state"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "reloads_total",
			Help: "Config reloads by outcome (applied, unchanged, refused, restarted, pending-restart, failed, skipped)."}, []string{"outcome"}),
		renderSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "render_duration_seconds",
			Help: "Time to render the Prosody config.", Buckets: latency}),
		reloadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "reload_duration_seconds",
			Help: "Time from the start of a reload to its outcome.", Buckets: latency}),
		reloadLastOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "reload_last_success_timestamp_seconds",
			Help: "When the last reload that left Prosody on the current config (applied, restarted or unchanged) ended, as a Unix time; 0 before the first."}),
		probeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "probe_duration_seconds",
			Help: "Duration of the XMPP c2s readiness probe.", Buckets: latency}),
		probeFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "probe_failures_total",
			Help: "XMPP c2s probes that did not get stream features."}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "reaped_zombies_total",
			Help: "Orphaned processes reaped (not counting the main child)."}),
		notifyMsgs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "notify_messages_total",
			Help: "Datagrams from the supervised child on NOTIFY_SOCKET by type (ready, reloading, stopping, other)."}, []string{"type"}),
		notifyDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "notify_dropped_total",
			Help: "Datagrams on NOTIFY_SOCKET ignored because they did not come from the supervised child's process."}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "cert_expiry_timestamp_seconds",
			Help: "NotAfter of the certificate in use per host, as a Unix time."}, []string{"host"}),
		startTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "start_time_seconds",
			Help: "Start time of the entrypoint's health monitor as a Unix time."}),
		watchdogRestarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "watchdog_restarts_total",
			Help: "Restarts of a wedged Prosody by the watchdog: its readiness probe failed for PROSODY_WATCHDOG_TIMEOUT while it should have been serving."}),
		httpConns: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "health_connections",
			Help: "Open connections on the health port (PROSODY_HEALTH_LISTEN)."}),
		httpRefused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "health_connections_refused_total",
			Help: "Connections to the health port closed at once because the port's connection limit, or one address's share of it, was reached."}),
		acmeRenewals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "acme_renewals_total",
			Help: "ACME certificate orders while running (renewals, and retries after a failed start) by outcome (success, failure)."}, []string{"outcome"}),
		acmeNext: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "acme_next_renewal_timestamp_seconds",
			Help: "When the next ACME order is due, as a Unix time; 0 when ACME is off."}),
		acmeLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "acme_last_success_timestamp_seconds",
			Help: "When the last ACME order while running succeeded, as a Unix time; 0 before the first."}),
		planModules: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "plan_modules",
			Help: "Modules the plan loads on each host, as of the last check over the admin socket: on a VirtualHost the global modules and its own, on a Component its type and its own modules (state=\"planned\"), and those of them Prosody has not loaded there (state=\"missing\"). A global module counts once on every VirtualHost, as Prosody loads it on each."}, []string{"host", "state"}),
		dbUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "database_up",
			Help: "1 if the last check could connect to the database (PostgreSQL storage), 0 if not."}),
	}
	cs := []prometheus.Collector{
		m.stageDuration, m.stageSuccess, m.childUp, m.childPID, m.restarts, m.starts, m.exits, m.readyState, m.reloads,
		m.renderSeconds, m.reloadSeconds, m.reloadLastOK, m.probeSeconds, m.probeFailures, m.reaped, m.notifyMsgs, m.notifyDropped, m.certExpiry,
		m.startTime, m.watchdogRestarts, m.httpConns, m.httpRefused, m.acmeRenewals, m.acmeNext, m.acmeLastSuccess, m.planModules,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	if withDB {
		cs = append(cs, m.dbUp)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register health metrics: %w (is the registry shared with another Monitor?)", err)
		}
	}
	// Pre-create bounded label values so every series exists from the first scrape.
	for s := range numStates {
		m.readyState.WithLabelValues(State(s).String()).Set(0)
	}
	for _, o := range reloadOutcomes() {
		m.reloads.WithLabelValues(o)
	}
	for _, o := range []string{"success", "failure"} {
		m.acmeRenewals.WithLabelValues(o)
	}
	for _, l := range []string{"inherited", "bound"} {
		m.starts.WithLabelValues(l)
	}
	for _, t := range []string{"ready", "reloading", "stopping", "other"} {
		m.notifyMsgs.WithLabelValues(t)
	}
	return m, nil
}

// setPlanModules mirrors a module check: per host, the modules planned there
// and those missing. A host no longer in the plan loses its series.
func (m *metrics) setPlanModules(hosts []hostModuleJSON) {
	seen := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		seen[h.Host] = true
		m.planModules.WithLabelValues(h.Host, "planned").Set(float64(len(h.Planned)))
		m.planModules.WithLabelValues(h.Host, "missing").Set(float64(len(h.Missing)))
	}
	for h := range m.planHosts {
		if !seen[h] {
			m.planModules.DeleteLabelValues(h, "planned")
			m.planModules.DeleteLabelValues(h, "missing")
		}
	}
	m.planHosts = seen
}

// setState mirrors s into the ready_state gauge.
func (m *metrics) setState(s State) {
	for i := range numStates {
		v := 0.0
		if State(i) == s {
			v = 1
		}
		m.readyState.WithLabelValues(State(i).String()).Set(v)
	}
}

// exitLabel bounds the code label to 0..255 plus "other".
func exitLabel(code int) string {
	if code < 0 || code > 255 {
		return "other"
	}
	return strconv.Itoa(code)
}
