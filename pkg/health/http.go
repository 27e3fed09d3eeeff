package health

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Endpoint paths served by the Monitor.
//
// MetricsPath serves only the entrypoint's own metrics (prosody_pfe_*, go_*,
// process_*). Prosody's metrics come from its own mod_http_openmetrics (enabled by
// the admin/monitoring feature with statistics = "internal") at /metrics on
// Prosody's HTTP port (http_ports, default 5280), limited by openmetrics_allow_ips;
// scrape both as two targets.
const (
	LivePath    = "/livez"
	ReadyPath   = "/readyz"
	StatusPath  = "/status"
	MetricsPath = "/metrics"
)

// newHandler routes the endpoints. /readyz and /livez, which orchestrators
// and load balancers may poll hard, are matched before the mux (same
// methods: GET and HEAD) and answered from the snapshot's pre-rendered
// bodies: no allocation, lock or formatting per request.
func (m *Monitor) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LivePath, m.serveLive)
	mux.HandleFunc("GET "+ReadyPath, m.serveReady)
	mux.HandleFunc("GET "+StatusPath, m.serveStatus)
	metrics := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg,
		ErrorLog:            zap.NewStdLog(m.log.Named("metrics")),
		MaxRequestsInFlight: 4,
	})
	mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		metrics.ServeHTTP(w, r)
		m.noteScrape()
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case ReadyPath:
				m.serveReady(w, r)
				return
			case LivePath:
				m.serveLive(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// serveLive answers 200 unless the supervisor gave up or the watchdog found
// Prosody wedged (until that child is gone or answers again).
func (m *Monitor) serveLive(w http.ResponseWriter, _ *http.Request) {
	m.snapshot.Load().live.write(w)
}

// serveReady answers 200 "ready" or 503 with the reason, from the cached state.
func (m *Monitor) serveReady(w http.ResponseWriter, _ *http.Request) {
	m.snapshot.Load().ready.write(w)
}

// snapshot is one Readiness and the /readyz and /livez answers rendered
// from it once, when it is made: requests only copy bytes.
type snapshot struct {
	r           Readiness
	ready, live answer
}

func newSnapshot(r Readiness) *snapshot {
	s := &snapshot{r: r}
	switch {
	case r.State == StateReady:
		s.ready = newAnswer(http.StatusOK, r.Reason)
	default:
		s.ready = newAnswer(http.StatusServiceUnavailable, r.Reason)
	}
	switch {
	case r.State == StateFailed:
		s.live = newAnswer(http.StatusServiceUnavailable, r.Reason)
	case r.Wedged != "":
		s.live = newAnswer(http.StatusServiceUnavailable, r.Wedged)
	default:
		s.live = newAnswer(http.StatusOK, "ok: "+r.State.String())
	}
	return s
}

// answer is one pre-rendered plain-text response.
type answer struct {
	code int
	body []byte
	// length is the Content-Length header's value: net/http would otherwise
	// format it per response.
	length []string
}

func newAnswer(code int, text string) answer {
	body := []byte(text + "\n")
	return answer{code: code, body: body, length: []string{strconv.Itoa(len(body))}}
}

// Header values shared by every plain-text answer. net/http only reads
// them; a handler that added a value would append to a full slice, which
// copies it, so sharing them is safe.
var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noStore   = []string{"no-store"}
)

func (a answer) write(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["Cache-Control"] = noStore
	h["Content-Length"] = a.length
	w.WriteHeader(a.code)
	_, _ = w.Write(a.body)
}

func writeText(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["Cache-Control"] = noStore
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body+"\n")
}

// Status is the /status document. It carries no secrets; it is served only
// to the clients statusAccess lets through.
type Status struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	// ConfigSource is "pfe" (rendered from the tree) or "file" (the operator's own
	// prosody.cfg.lua, ConfigFile; no profile or features then).
	ConfigSource  string      `json:"config_source,omitempty"`
	ConfigFile    string      `json:"config_file,omitempty"`
	Profile       string      `json:"profile"`
	Environment   string      `json:"environment"`
	Features      []string    `json:"features"`
	Hosts         []string    `json:"hosts"`
	ConfigHash    string      `json:"config_hash"`
	ConfigCheck   string      `json:"config_check,omitempty"` // "checked" or "cached"
	UptimeSeconds float64     `json:"uptime_seconds"`
	Stages        []stageJSON `json:"stages"`
	StagesDone    bool        `json:"stages_done"`
	Child         childJSON   `json:"child"`
	LastReload    *reloadJSON `json:"last_reload,omitempty"`
	Certs         []certJSON  `json:"certs"`
	Probe         *probeJSON  `json:"probe,omitempty"`
	NotifyStatus  string      `json:"notify_status,omitempty"`
	// Modules is the plan's modules per host against those Prosody loaded.
	Modules *modulesJSON `json:"modules,omitempty"`
	// Verify is the summary of the last `entrypoint verify`.
	Verify *VerifySummary `json:"verify,omitempty"`
	// Database is the last database check (PostgreSQL storage only).
	Database *databaseJSON `json:"database,omitempty"`
	// Watchdog is what the watchdog did (when Config.WatchdogTimeout is set).
	Watchdog *watchdogJSON `json:"watchdog,omitempty"`
	// ACME is the ACME certificate's renewal state (when ACME is on).
	ACME *acmeJSON `json:"acme,omitempty"`
	// Listeners are the sockets the entrypoint holds for Prosody (Prosody mode).
	Listeners *listenersJSON `json:"listeners,omitempty"`
}

type stageJSON struct {
	Name            string  `json:"name"`
	DurationSeconds float64 `json:"duration_seconds"`
	OK              bool    `json:"ok"`
	Error           string  `json:"error,omitempty"`
}

type childJSON struct {
	PID           int       `json:"pid"`
	Running       bool      `json:"running"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Restarts      int       `json:"restarts"`
	LastExit      *exitJSON `json:"last_exit,omitempty"`
}

type exitJSON struct {
	PID    int       `json:"pid"`
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

type reloadJSON struct {
	Outcome         string    `json:"outcome"`
	DurationSeconds float64   `json:"duration_seconds"`
	At              time.Time `json:"at"`
	Error           string    `json:"error,omitempty"`
}

type certJSON struct {
	Host     string    `json:"host"`
	NotAfter time.Time `json:"not_after"`
	// Source is where the certificate came from: discovered (mounted),
	// staged (a mounted one copied readable), generated (self-signed) or acme.
	Source string `json:"source,omitempty"`
}

// acmeJSON is the ACME certificate's renewal state; absent when ACME is off.
type acmeJSON struct {
	NextRenewal   *time.Time `json:"next_renewal,omitempty"`
	LastOutcome   string     `json:"last_outcome,omitempty"`
	LastAt        *time.Time `json:"last_at,omitempty"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	// Failures counts the failed orders since the last success.
	Failures int `json:"failures"`
}

type probeJSON struct {
	OK              bool      `json:"ok"`
	Detail          string    `json:"detail"`
	At              time.Time `json:"at"`
	DurationSeconds float64   `json:"duration_seconds"`
}

// Status returns a copy of the /status document.
func (m *Monitor) Status() Status {
	r := m.Readiness()
	now := time.Now()
	verify := m.verifySummary() // reads a file: not under mu
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &m.status
	s := Status{
		State:         r.State.String(),
		Reason:        r.Reason,
		ConfigSource:  st.info.ConfigSource,
		ConfigFile:    st.info.ConfigFile,
		Profile:       st.info.Profile,
		Environment:   st.info.Environment,
		Features:      nonNil(st.info.Features),
		Hosts:         nonNil(st.info.Hosts),
		ConfigHash:    st.info.ConfigHash,
		ConfigCheck:   st.info.ConfigCheck,
		UptimeSeconds: now.Sub(m.started).Seconds(),
		Stages:        append([]stageJSON{}, st.stages...),
		StagesDone:    m.in.stagesDone,
		Child: childJSON{
			PID:      m.in.childPID,
			Running:  m.in.childRunning,
			Restarts: st.restarts,
			LastExit: st.lastExit,
		},
		LastReload:   st.lastReload,
		Certs:        []certJSON{},
		Probe:        st.probe,
		NotifyStatus: st.notifyStatus,
		Database:     st.database,
		Modules:      st.modules,
		Verify:       verify,
	}
	if st.acme != nil {
		a := *st.acme
		s.ACME = &a
	}
	if m.cfg.WatchdogTimeout > 0 && m.cfg.Mode == ModeProsody {
		s.Watchdog = &watchdogJSON{TimeoutSeconds: m.cfg.WatchdogTimeout.Seconds(), Restarts: st.watchdogRestarts, Last: st.watchdogLast}
	}
	if m.cfg.Mode == ModeProsody {
		s.Listeners = m.listenerStatus()
	}
	if !m.in.childRunning {
		s.Child.PID = 0
	} else {
		s.Child.UptimeSeconds = now.Sub(st.childStarted).Seconds()
	}
	for host, t := range st.certs {
		s.Certs = append(s.Certs, certJSON{Host: host, NotAfter: t, Source: st.info.CertSources[host]})
	}
	slices.SortFunc(s.Certs, func(a, b certJSON) int { return strings.Compare(a.Host, b.Host) })
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func (m *Monitor) serveStatus(w http.ResponseWriter, r *http.Request) {
	if code := statusAccess(r.RemoteAddr, r.Header.Get("Authorization"), *m.token.Load()); code != http.StatusOK {
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="prosody-pfe status"`)
		}
		writeText(w, code, http.StatusText(code)+": "+statusRefusal)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m.Status()); err != nil {
		m.log.Debug("write status", zap.Error(err))
	}
}
