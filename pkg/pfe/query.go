package pfe

import (
	"maps"
	"slices"
	"strings"
)

// Queries over a finished plan, for the stages that act on it and the reload
// decision that compares two. They never change the plan.

// OptionMap is a section's options by name.
func (s SectionPlan) OptionMap() map[string]any {
	m := make(map[string]any, len(s.Options))
	for _, o := range s.Options {
		m[o.Name] = o.Value
	}
	return m
}

// GlobalOption is the value of a global option, nil when the plan does not set it.
func GlobalOption(p *Plan, name string) any {
	for _, o := range p.Global.Options {
		if o.Name == name {
			return o.Value
		}
	}
	return nil
}

// HasGlobalModule reports whether the global modules_enabled lists name.
func HasGlobalModule(p *Plan, name string) bool {
	return slices.ContainsFunc(p.Global.Modules, func(m Module) bool { return m.Name == name })
}

// ModuleNames are the names of ms, sorted.
func ModuleNames(ms []Module) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	slices.Sort(out)
	return out
}

// Host is the VirtualHost for domain; the zero HostPlan when there is none.
func (p *Plan) Host(domain string) HostPlan {
	for _, h := range p.Hosts {
		if h.Domain == domain {
			return h
		}
	}
	return HostPlan{}
}

// HostModules is the set of modules a VirtualHost loads: global plus its own,
// minus both disabled lists.
func (p *Plan) HostModules(domain string) map[string]bool {
	set := map[string]bool{}
	for _, m := range p.Global.Modules {
		set[m.Name] = true
	}
	h := p.Host(domain)
	for _, m := range h.Modules {
		set[m.Name] = true
	}
	for _, m := range append(slices.Clone(p.Global.Disabled), h.Disabled...) {
		delete(set, m.Name)
	}
	return set
}

// CredentialNames lists the Credential("name") references of a plan, sorted.
func CredentialNames(p *Plan) []string {
	seen := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case Credential:
			seen[x.Name] = true
		case *Credential:
			seen[x.Name] = true
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	sections := []SectionPlan{p.Global}
	for _, h := range p.Hosts {
		sections = append(sections, h.SectionPlan)
	}
	for _, c := range p.Components {
		sections = append(sections, c.SectionPlan)
	}
	for _, sec := range sections {
		for _, o := range sec.Options {
			walk(o.Value)
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// ModuleDirs are where the rendered config makes Prosody look for modules:
// Debian's directory, then the plan's plugin_paths (PROSODY_PLUGIN_DIR).
func ModuleDirs(p *Plan) []string {
	dirs := []string{DebianModuleDir}
	if list, ok := GlobalOption(p, "plugin_paths").([]any); ok {
		for _, d := range list {
			if s, ok := d.(string); ok {
				dirs = append(dirs, s)
			}
		}
	}
	return dirs
}

// FeatureNames are the enabled features' names, in plan order.
func (p *Plan) FeatureNames() []string {
	names := make([]string, len(p.Features))
	for i, f := range p.Features {
		names[i] = f.Name
	}
	return names
}

// HostModules is what one host of a running server must have loaded: a
// VirtualHost's modules (global plus its own, minus the disabled ones) or a
// Component's (its type module plus its own modules_enabled; Prosody gives a
// component only a few of the global modules, which are not listed here).
type HostModules struct {
	Host string `json:"host"`
	// Component is the component's name in the tree, "" for a VirtualHost.
	Component string `json:"component,omitempty"`
	// Modules are the module names, sorted, each with the feature that added it
	// ("" for core, profile and environment layers, and a component's type).
	Modules []Module `json:"modules"`
}

// ExpectedModules lists, for every VirtualHost then every Component of p, the
// modules Prosody must have loaded there once it runs p.
func (p *Plan) ExpectedModules() []HostModules {
	var out []HostModules
	for _, h := range p.Hosts {
		on := p.HostModules(h.Domain)
		var mods []Module
		for _, m := range append(slices.Clone(p.Global.Modules), h.Modules...) {
			if on[m.Name] && !slices.ContainsFunc(mods, func(x Module) bool { return x.Name == m.Name }) {
				mods = append(mods, m)
			}
		}
		slices.SortFunc(mods, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, HostModules{Host: h.Domain, Modules: mods})
	}
	for _, c := range p.Components {
		mods := []Module{{Name: c.Type, Why: c.Why}}
		off := map[string]bool{}
		for _, m := range c.Disabled {
			off[m.Name] = true
		}
		for _, m := range c.Modules {
			if !off[m.Name] && m.Name != c.Type {
				mods = append(mods, m)
			}
		}
		slices.SortFunc(mods, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, HostModules{Host: c.Address, Component: c.Name, Modules: mods})
	}
	return out
}
