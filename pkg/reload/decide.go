// Package reload decides how a changed configuration reaches the running
// Prosody, and runs that decision: re-run the config stages into a
// candidate, decide, install, apply. The decision is a pure function of the
// running and the candidate state; the Reloader is its named, timed steps.
package reload

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/listeners"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// Action is what a reload does with a candidate.
type Action int

const (
	// Nothing: the candidate renders the same bytes with the same
	// certificates and secrets; nothing is done.
	Nothing Action = iota
	// Refuse: the candidate must never be applied by a reload; the running
	// server keeps its config.
	Refuse
	// Apply: Prosody applies it live (config:reload() and module load/unload
	// over the admin socket when Live, else SIGHUP).
	Apply
	// Restart: Prosody reads the change only at start.
	Restart
)

func (a Action) String() string {
	switch a {
	case Nothing:
		return "nothing"
	case Refuse:
		return "refuse"
	case Apply:
		return "apply"
	case Restart:
		return "restart"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// HostModule is a module to load or unload on one VirtualHost.
type HostModule struct{ Host, Module string }

// Decision is how to go from the running config to the candidate.
type Decision struct {
	Action Action
	// Reason says why, for Refuse and Restart.
	Reason string
	// Live: both configs load the admin shell, so the change is applied over
	// it (which reports Prosody's real result) rather than by SIGHUP.
	Live bool
	// Load and Unload are the VirtualHost modules that Apply changes live, in
	// host order, then module name.
	Load, Unload []HostModule
}

// storageOptions select where the data lives: switching them by a reload
// would leave the data in the old backend.
var storageOptions = []string{"data_path", "default_storage", "sql", "storage"}

// restartOptions are global options Prosody reads once, sorted: a change to
// any of them needs a restart. The first changed one (in this order) is the
// reason given.
var restartOptions = []string{
	"admin_socket", "authentication", "c2s_direct_tls_ports", "c2s_ports", "data_path", "default_storage",
	"gc", "http_interfaces", "http_ports", "https_interfaces", "https_ports", "interfaces", "local_interfaces",
	"network_backend", "pidfile", "plugin_paths", "run_as_root", "s2s_direct_tls_ports", "s2s_ports", "sql",
	"statistics", "statistics_interval", "storage", "umask",
}

// Decide compares the running state with a candidate. It reads only the two
// states: plans, rendered bytes, certificate fingerprints, secrets hashes.
func Decide(running, candidate *initsteps.State) Decision {
	prev, next := running.Plan, candidate.Plan
	if name := changedOption(prev, next, storageOptions); name != "" {
		return Decision{Action: Refuse, Reason: "option " + name + " changed: storage is not switched by a reload, the data would stay behind; set PROSODY_STORAGE and restart the container, which migrates the data before Prosody starts"}
	}
	certsChanged := fingerprints(running) != fingerprints(candidate)
	secretsChanged := running.SecretsHash != candidate.SecretsHash
	if string(running.Rendered) == string(candidate.Rendered) && !certsChanged && !secretsChanged {
		return Decision{Action: Nothing}
	}
	live := pfe.HasGlobalModule(prev, "admin_shell") && pfe.HasGlobalModule(next, "admin_shell")
	why := restartReason(prev, next, live)
	if why == "" && secretsChanged {
		why = "a secret changed (Prosody reads secrets when a module or the storage starts)"
	}
	if why != "" {
		return Decision{Action: Restart, Reason: why, Live: live}
	}
	d := Decision{Action: Apply, Live: live}
	if live {
		for _, h := range next.Hosts {
			before, after := prev.HostModules(h.Domain), next.HostModules(h.Domain)
			for _, m := range sortedDiff(after, before) {
				d.Load = append(d.Load, HostModule{Host: h.Domain, Module: m})
			}
			for _, m := range sortedDiff(before, after) {
				d.Unload = append(d.Unload, HostModule{Host: h.Domain, Module: m})
			}
		}
	}
	return d
}

// changedOption is the first of names whose global value differs, or "".
func changedOption(prev, next *pfe.Plan, names []string) string {
	po, no := prev.Global.OptionMap(), next.Global.OptionMap()
	for _, name := range names {
		if fmt.Sprint(po[name]) != fmt.Sprint(no[name]) {
			return name
		}
	}
	return ""
}

// restartReason says why prev → next cannot be applied by a reload, or "".
func restartReason(prev, next *pfe.Plan, liveModules bool) string {
	if name := changedOption(prev, next, restartOptions); name != "" {
		return "option " + name + " changed"
	}
	if !slices.Equal(prev.Domains, next.Domains) {
		return "virtual hosts changed"
	}
	// Prosody binds (or takes the inherited) listeners only at start; this
	// also catches <service>_interfaces, use_ipv4 and use_ipv6.
	if !slices.Equal(listeners.Plan(prev), listeners.Plan(next)) {
		return "listening sockets changed"
	}
	if componentsKey(prev) != componentsKey(next) {
		return "components changed"
	}
	hostsChanged := slices.ContainsFunc(next.Hosts, func(h pfe.HostPlan) bool {
		return !maps.Equal(prev.HostModules(h.Domain), next.HostModules(h.Domain))
	})
	if hostsChanged || !slices.Equal(pfe.ModuleNames(prev.Global.Modules), pfe.ModuleNames(next.Global.Modules)) ||
		!slices.Equal(pfe.ModuleNames(prev.Global.Disabled), pfe.ModuleNames(next.Global.Disabled)) {
		if !liveModules {
			return "modules changed and the admin shell (feature admin/shell) is not on in both the old and new config to load them live"
		}
		for _, h := range next.Hosts {
			if !slices.Equal(pfe.ModuleNames(h.Disabled), pfe.ModuleNames(prev.Host(h.Domain).Disabled)) {
				return "disabled modules changed"
			}
		}
	}
	return ""
}

// componentsKey is the identity and content of every Component: changing one
// needs a restart (host:activate cannot give a component new options).
func componentsKey(p *pfe.Plan) string {
	var b strings.Builder
	for _, c := range p.Components {
		fmt.Fprintf(&b, "%s %s %v %v;", c.Address, c.Type, pfe.ModuleNames(c.Modules), c.OptionMap())
	}
	return b.String()
}

func sortedDiff(a, b map[string]bool) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if !b[k] {
			out = append(out, k)
		}
	}
	return out
}

// fingerprints identifies the certificates a state serves.
func fingerprints(s *initsteps.State) string {
	if s.Certs == nil {
		return ""
	}
	var b strings.Builder
	for _, h := range s.Certs.Hosts {
		b.WriteString(h.Host + "=" + h.Fingerprint + ";")
	}
	return b.String()
}
