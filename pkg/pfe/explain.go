package pfe

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Explanation says whether a module, option or feature is in the plan, where, and why.
type Explanation struct {
	Kind    string   `json:"kind"` // "module", "disabled_module", "option", "component" or "feature"
	Name    string   `json:"name"`
	Section string   `json:"section"` // "global", "host", "component <name>", "" for features
	In      bool     `json:"in"`
	Value   any      `json:"value,omitempty"`
	Why     []string `json:"why"`
	// Options are, for a module a feature loads, the options of the same section that
	// this feature sets or that later layers changed after it: what the module runs with.
	Options []Option `json:"options,omitempty"`
	// Notes are, for a feature, its notes from the tree (Tree.Explain).
	Notes []string `json:"notes,omitempty"`
}

// Explain is Plan.Explain with each feature's notes from the tree.
func (t *Tree) Explain(p *Plan, name string) []Explanation {
	ex := p.Explain(name)
	for i := range ex {
		if f := t.features[ex[i].Name]; ex[i].Kind == "feature" && f != nil {
			ex[i].Notes = f.Notes
		}
	}
	return ex
}

// featureOptions returns the options of sp that feature set (its layers label the
// option "feature <name> ..."), in name order.
func featureOptions(sp *SectionPlan, feature string) []Option {
	if feature == "" {
		return nil
	}
	var out []Option
	for _, o := range sp.Options {
		if slices.ContainsFunc(o.Why, func(w string) bool { return strings.HasPrefix(w, "feature "+feature+" ") }) {
			out = append(out, o)
		}
	}
	return out
}

// Explain returns every place name appears in the plan as a module, option, component type
// or feature, in or out, with the reasons. A "mod_" prefix is ignored. Hosts and components
// are the same for every domain, so each section is reported once. Empty means the tree
// never mentions name.
func (p *Plan) Explain(name string) []Explanation {
	name = strings.TrimPrefix(name, "mod_")
	var out []Explanation
	section := func(sec string, sp *SectionPlan) {
		for _, m := range sp.Modules {
			if m.Name == name {
				out = append(out, Explanation{Kind: "module", Name: name, Section: sec, In: true, Why: m.Why, Options: featureOptions(sp, m.Feature)})
			}
		}
		for _, m := range sp.Disabled {
			if m.Name == name {
				out = append(out, Explanation{Kind: "disabled_module", Name: name, Section: sec, In: true, Why: m.Why})
			}
		}
		for _, o := range sp.Options {
			if o.Name == name {
				out = append(out, Explanation{Kind: "option", Name: name, Section: sec, In: true, Value: o.Value, Why: o.Why})
			}
		}
	}
	section("global", &p.Global)
	if len(p.Hosts) > 0 {
		section("host", &p.Hosts[0].SectionPlan)
	}
	seen := map[string]bool{}
	for i := range p.Components {
		c := &p.Components[i]
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		if c.Type == name {
			out = append(out, Explanation{Kind: "component", Name: name, Section: "component " + c.Name, In: true, Why: c.Why})
		}
		section("component "+c.Name, &c.SectionPlan)
	}
	for _, f := range p.Features {
		if f.Name == name {
			out = append(out, Explanation{Kind: "feature", Name: name, In: true, Why: f.Why})
		}
	}
	for _, r := range p.Removed {
		if r.Name == name {
			out = append(out, Explanation{Kind: r.Kind, Name: name, Section: r.Section, In: false, Why: r.Why})
		}
	}
	return out
}

// Modules returns every module the plan loads: global and host modules_enabled, component
// types and component modules; sorted, without duplicates.
func (p *Plan) Modules() []string {
	set := map[string]bool{}
	for _, m := range p.Global.Modules {
		set[m.Name] = true
	}
	for _, h := range p.Hosts {
		for _, m := range h.Modules {
			set[m.Name] = true
		}
	}
	for _, c := range p.Components {
		set[c.Type] = true
		for _, m := range c.Modules {
			set[m.Name] = true
		}
	}
	return sortedKeys(set)
}

// Missing is a module of the plan that no module directory provides.
type Missing struct {
	Module  string `json:"module"`
	Feature string `json:"feature,omitempty"`
	Hint    string `json:"hint"`
}

// DebianModuleDir is where Debian's prosody and prosody-modules packages install modules.
const DebianModuleDir = "/usr/lib/prosody/modules"

// MissingModules returns the plan's modules that none of dirs provides, sorted by name. A
// module exists where Prosody's plugin loader would find it: mod_<name>.lua,
// mod_<name>/mod_<name>.lua, mod_<name>/<name>/mod_<name>.lua or <name>/mod_<name>.lua.
func MissingModules(p *Plan, dirs []string) []Missing {
	feature := map[string]string{}
	note := func(mods []Module) {
		for _, m := range mods {
			if m.Feature != "" && feature[m.Name] == "" {
				feature[m.Name] = m.Feature
			}
		}
	}
	note(p.Global.Modules)
	for _, h := range p.Hosts {
		note(h.Modules)
	}
	for _, c := range p.Components {
		note(c.Modules)
	}
	features := map[string]*PlannedFeature{}
	for i := range p.Features {
		features[p.Features[i].Name] = &p.Features[i]
	}
	var out []Missing
	for _, m := range p.Modules() {
		if moduleExists(m, dirs) {
			continue
		}
		miss := Missing{Module: m, Feature: feature[m]}
		miss.Hint = missingHint(m, features[miss.Feature], dirs)
		out = append(out, miss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Module < out[j].Module })
	return out
}

func moduleExists(name string, dirs []string) bool {
	file := "mod_" + name + ".lua"
	for _, d := range dirs {
		for _, rel := range []string{
			file,
			filepath.Join("mod_"+name, file),
			filepath.Join("mod_"+name, name, file),
			filepath.Join(name, file),
		} {
			if st, err := os.Stat(filepath.Join(d, rel)); err == nil && !st.IsDir() {
				return true
			}
		}
	}
	return false
}

func missingHint(module string, f *PlannedFeature, dirs []string) string {
	where := strings.Join(dirs, ", ")
	community := "a community module: download mod_" + module + " from https://modules.prosody.im/mod_" + module +
		".html into a directory listed in plugin_paths (for example /usr/local/lib/prosody/modules), or disable the feature"
	if f == nil {
		return "not found in " + where + "; install the Debian package prosody-modules, or it is " + community
	}
	if slices.Contains(f.CommunityModules, module) {
		return "feature " + f.Name + " needs " + community
	}
	if len(f.Packages) > 0 {
		return "feature " + f.Name + " needs the Debian package(s) " + strings.Join(f.Packages, ", ") +
			" (apt-get install " + strings.Join(f.Packages, " ") + "); not found in " + where
	}
	return "feature " + f.Name + " uses it but it is not in " + where + "; it may be " + community
}
