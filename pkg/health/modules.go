package health

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
)

// HostModules is what one host (a VirtualHost or a Component address) of the
// plan must have loaded: pfe.Plan.ExpectedModules, names only.
type HostModules struct {
	Host    string
	Modules []string
}

// modulesJSON is /status "modules": the plan against what Prosody has loaded.
type modulesJSON struct {
	// Skipped says why there is no check (the admin shell is off).
	Skipped string    `json:"skipped,omitempty"`
	At      time.Time `json:"at,omitzero"`
	// Error is why the last check could not run (not a missing module).
	Error string `json:"error,omitempty"`
	// Planned and Missing add up the hosts' lists: a global module counts
	// once on every VirtualHost (the metric plan_modules has them per host).
	Planned int              `json:"planned"`
	Missing int              `json:"missing"`
	Hosts   []hostModuleJSON `json:"hosts,omitempty"`
}

type hostModuleJSON struct {
	Host    string   `json:"host"`
	Planned []string `json:"planned"`
	Loaded  []string `json:"loaded"`
	Missing []string `json:"missing,omitempty"`
	// ProsodyErrors are Prosody's own log lines about the missing modules.
	ProsodyErrors []string `json:"prosody_errors,omitempty"`
}

// moduleCheckTimeout bounds one check (one admin socket session).
const moduleCheckTimeout = 10 * time.Second

// checkModules asks Prosody which modules are loaded on each host of the
// plan and records the comparison: a missing module makes the state
// degraded (/readyz 503 naming it), a check that cannot run is logged and
// shown in /status but does not change readiness.
func (m *Monitor) checkModules(ctx context.Context) {
	m.mu.Lock()
	sock, want := m.status.info.AdminSocket, m.status.info.Modules
	gen := m.in.modulesGen
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, moduleCheckTimeout)
	defer cancel()
	rec, err := compareModules(ctx, sock, want, m.cfg.ProsodyLog)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down
	}
	rec.At = time.Now().UTC()
	if err != nil {
		rec.Error = err.Error()
		m.log.Warn("cannot check the loaded modules against the plan", zap.Error(err))
	} else {
		m.met.setPlanModules(rec.Hosts)
	}
	var missing []string
	for _, h := range rec.Hosts {
		if len(h.Missing) == 0 {
			continue
		}
		m.log.Error("modules of the plan are not loaded", zap.String("host", h.Host), zap.Strings("missing", h.Missing),
			zap.Strings("prosody_errors", h.ProsodyErrors))
		for _, mod := range h.Missing {
			missing = append(missing, mod+" on "+h.Host)
		}
	}
	m.update(func(in *inputs, st *statusRecord) {
		if in.modulesGen != gen {
			return // the plan or the child changed meanwhile: the next check counts
		}
		in.modulesPending = false
		in.modulesMissing = ""
		if len(missing) > 0 {
			in.modulesMissing = strings.Join(missing, ", ")
			if errs := firstErrors(rec.Hosts); errs != "" {
				in.modulesMissing += " (prosody: " + errs + ")"
			}
		}
		st.modules = &rec
	})
}

// firstErrors is Prosody's last error line about the first missing module that has one.
func firstErrors(hosts []hostModuleJSON) string {
	for _, h := range hosts {
		if n := len(h.ProsodyErrors); n > 0 {
			return h.ProsodyErrors[n-1]
		}
	}
	return ""
}

// compareModules lists the loaded modules of every host in want (plus the
// global host's, which a VirtualHost shares) and compares. The lists come in
// one admin command: the check sits between READY=1 and /readyz 200.
func compareModules(ctx context.Context, sock string, want []HostModules, plog *ProsodyLog) (modulesJSON, error) {
	rec := modulesJSON{}
	conn, err := adminsock.Dial(ctx, sock)
	if err != nil {
		return rec, err
	}
	defer conn.Close()
	hosts := make([]string, len(want))
	for i, hw := range want {
		hosts[i] = hw.Host
	}
	sets, err := conn.LoadedModulesOf(ctx, hosts)
	if err != nil {
		return rec, fmt.Errorf("list the loaded modules: %w", err)
	}
	for _, hw := range want {
		set := sets[hw.Host]
		loaded := slices.Sorted(maps.Keys(set))
		h := hostModuleJSON{Host: hw.Host, Planned: slices.Clone(hw.Modules), Loaded: loaded}
		for _, mod := range hw.Modules {
			rec.Planned++
			if !set[mod] {
				h.Missing = append(h.Missing, mod)
				h.ProsodyErrors = append(h.ProsodyErrors, plog.ErrorsAbout(mod)...)
				rec.Missing++
			}
		}
		rec.Hosts = append(rec.Hosts, h)
	}
	return rec, nil
}
