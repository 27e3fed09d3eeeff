package reload

import (
	"slices"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/tlscerts"
)

func mods(names ...string) []pfe.Module {
	out := make([]pfe.Module, len(names))
	for i, n := range names {
		out[i] = pfe.Module{Name: n}
	}
	return out
}

// base is a running state: admin shell on, one host, one MUC component.
func base() *initsteps.State {
	p := &pfe.Plan{
		Domains: []string{"example.com"},
		Global: pfe.SectionPlan{Modules: mods("admin_shell", "roster", "saslauth"), Options: []pfe.Option{
			{Name: "c2s_ports", Value: []any{int64(5222)}},
			{Name: "storage", Value: "internal"},
			{Name: "log_level", Value: "info"},
		}},
		Hosts: []pfe.HostPlan{{Domain: "example.com", SectionPlan: pfe.SectionPlan{Modules: mods("mam")}}},
		Components: []pfe.ComponentPlan{{Address: "conference.example.com", Type: "muc",
			SectionPlan: pfe.SectionPlan{Options: []pfe.Option{{Name: "restrict_room_creation", Value: false}}}}},
	}
	return &initsteps.State{Plan: p, Rendered: []byte("rendered"), SecretsHash: "s1",
		Certs: &tlscerts.Result{Hosts: []tlscerts.HostCert{{Host: "example.com", Fingerprint: "f1"}}}}
}

// clone deep-copies what the cases change.
func clone(s *initsteps.State) *initsteps.State {
	c := *s
	p := *s.Plan
	p.Domains = slices.Clone(p.Domains)
	p.Global.Modules = slices.Clone(p.Global.Modules)
	p.Global.Options = slices.Clone(p.Global.Options)
	p.Hosts = slices.Clone(p.Hosts)
	for i := range p.Hosts {
		p.Hosts[i].Modules = slices.Clone(p.Hosts[i].Modules)
	}
	p.Components = slices.Clone(p.Components)
	for i := range p.Components {
		p.Components[i].Options = slices.Clone(p.Components[i].Options)
	}
	c.Plan = &p
	certs := *s.Certs
	certs.Hosts = slices.Clone(certs.Hosts)
	c.Certs = &certs
	c.Rendered = []byte("rendered, changed")
	return &c
}

func setGlobal(p *pfe.Plan, name string, v any) {
	for i, o := range p.Global.Options {
		if o.Name == name {
			p.Global.Options[i].Value = v
			return
		}
	}
	p.Global.Options = append(p.Global.Options, pfe.Option{Name: name, Value: v})
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(s *initsteps.State)
		action Action
		reason string // substring of Reason
		live   bool
		load   []HostModule
		unload []HostModule
	}{
		{name: "same bytes, certs and secrets", action: Nothing,
			change: func(s *initsteps.State) { s.Rendered = []byte("rendered") }},
		{name: "a live option", action: Apply, live: true,
			change: func(s *initsteps.State) { setGlobal(s.Plan, "log_level", "debug") }},
		{name: "certificate renewed", action: Apply, live: true,
			change: func(s *initsteps.State) { s.Rendered = []byte("rendered"); s.Certs.Hosts[0].Fingerprint = "f2" }},
		{name: "secret rotated", action: Restart, reason: "a secret changed", live: true,
			change: func(s *initsteps.State) { s.Rendered = []byte("rendered"); s.SecretsHash = "s2" }},
		{name: "storage switched", action: Refuse, reason: "option storage changed: storage is not switched by a reload",
			change: func(s *initsteps.State) { setGlobal(s.Plan, "storage", "sql") }},
		{name: "sql connection", action: Refuse, reason: "option sql changed",
			change: func(s *initsteps.State) { setGlobal(s.Plan, "sql", map[string]any{"driver": "PostgreSQL"}) }},
		{name: "data_path", action: Refuse, reason: "option data_path changed",
			change: func(s *initsteps.State) { setGlobal(s.Plan, "data_path", "/elsewhere") }},
		{name: "c2s port", action: Restart, reason: "option c2s_ports changed", live: true,
			change: func(s *initsteps.State) { setGlobal(s.Plan, "c2s_ports", []any{int64(5223)}) }},
		{name: "several restart options: the first in order", action: Restart, reason: "option c2s_ports changed", live: true,
			change: func(s *initsteps.State) {
				setGlobal(s.Plan, "s2s_ports", []any{int64(5270)})
				setGlobal(s.Plan, "interfaces", []any{"::"})
				setGlobal(s.Plan, "c2s_ports", []any{int64(5223)})
			}},
		{name: "a service's own interfaces: the listeners change", action: Restart, reason: "listening sockets changed", live: true,
			change: func(s *initsteps.State) { setGlobal(s.Plan, "c2s_interfaces", []any{"127.0.0.1"}) }},
		{name: "authentication", action: Restart, reason: "option authentication changed", live: true,
			change: func(s *initsteps.State) { setGlobal(s.Plan, "authentication", "ldap") }},
		{name: "virtual host added", action: Restart, reason: "virtual hosts changed", live: true,
			change: func(s *initsteps.State) {
				s.Plan.Domains = append(s.Plan.Domains, "example.org")
				s.Plan.Hosts = append(s.Plan.Hosts, pfe.HostPlan{Domain: "example.org"})
			}},
		{name: "component option", action: Restart, reason: "components changed", live: true,
			change: func(s *initsteps.State) { s.Plan.Components[0].Options[0].Value = true }},
		{name: "component removed", action: Restart, reason: "components changed", live: true,
			change: func(s *initsteps.State) { s.Plan.Components = nil }},
		{name: "host module added and removed live", action: Apply, live: true,
			load:   []HostModule{{"example.com", "carbons"}},
			unload: []HostModule{{"example.com", "mam"}},
			change: func(s *initsteps.State) { s.Plan.Hosts[0].Modules = mods("carbons") }},
		{name: "global module added live", action: Apply, live: true,
			load: []HostModule{{"example.com", "smacks"}},
			change: func(s *initsteps.State) {
				s.Plan.Global.Modules = append(s.Plan.Global.Modules, pfe.Module{Name: "smacks"})
			}},
		{name: "modules without the admin shell", action: Restart, reason: "admin shell", live: false,
			change: func(s *initsteps.State) {
				s.Plan.Global.Modules = mods("roster", "saslauth")
			}},
		{name: "disabled module on a host", action: Restart, reason: "disabled modules changed", live: true,
			change: func(s *initsteps.State) { s.Plan.Hosts[0].Disabled = mods("mam") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			running := base()
			next := clone(running)
			tc.change(next)
			d := Decide(running, next)
			if d.Action != tc.action || !strings.Contains(d.Reason, tc.reason) || d.Live != tc.live {
				t.Fatalf("Decide = %v %q live=%t; want %v with %q live=%t", d.Action, d.Reason, d.Live, tc.action, tc.reason, tc.live)
			}
			if !slices.Equal(d.Load, tc.load) || !slices.Equal(d.Unload, tc.unload) {
				t.Fatalf("load %v unload %v; want %v and %v", d.Load, d.Unload, tc.load, tc.unload)
			}
			if again := Decide(running, next); again.Reason != d.Reason {
				t.Fatalf("not deterministic: %q then %q", d.Reason, again.Reason)
			}
		})
	}
}

// Without the admin shell a live change goes by SIGHUP.
func TestDecideWithoutAdminShellSignals(t *testing.T) {
	running := base()
	running.Plan.Global.Modules = mods("roster", "saslauth")
	next := clone(running)
	setGlobal(next.Plan, "log_level", "debug")
	if d := Decide(running, next); d.Action != Apply || d.Live {
		t.Fatalf("Decide = %+v, want Apply by SIGHUP", d)
	}
}
