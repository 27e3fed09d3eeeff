package pfe

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Plan is the resolved configuration: every module and option of every section, with the
// chain of reasons it is there, and what was left out and why. It is a plain value: it
// marshals to JSON, holds no secrets (credentials are references by name) and is not
// modified after Plan returns.
type Plan struct {
	Profile     string    `json:"profile"`
	Environment string    `json:"environment"`
	Domains     []string  `json:"domains"`
	LogLevel    string    `json:"log_level"`
	TLS         TLSPolicy `json:"tls"`
	// Features are the enabled features in the order their layers were applied.
	Features []PlannedFeature `json:"features"`
	Global   SectionPlan      `json:"global"`
	// Hosts has one VirtualHost per domain, in the order of Inputs.Domains.
	Hosts []HostPlan `json:"hosts"`
	// Components has, for each component name (sorted), one Component per domain.
	Components []ComponentPlan `json:"components"`
	// Removed lists modules, options and features that are out, and why.
	Removed []Removed `json:"removed,omitempty"`
	// Legacy holds legacy/modules.d files when Inputs.Legacy is set.
	Legacy   []LegacyFile `json:"legacy,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
	Shadowed []Shadow     `json:"shadowed,omitempty"`
}

// PlannedFeature is an enabled feature.
type PlannedFeature struct {
	Name             string   `json:"name"`
	Why              []string `json:"why"`
	Parts            []string `json:"parts,omitempty"`
	Stability        string   `json:"stability,omitempty"`
	Packages         []string `json:"packages,omitempty"`
	CommunityModules []string `json:"community_modules,omitempty"`
	// Disco is what a client sees of the feature and its enabled parts; nil when nothing.
	Disco  *Disco `json:"disco,omitempty"`
	Source string `json:"source"`
}

// Module is a module in modules_enabled or modules_disabled.
type Module struct {
	Name string `json:"name"`
	// Feature is the feature whose layer added it, "" for core, profile and environment.
	Feature string   `json:"feature,omitempty"`
	Why     []string `json:"why"`
}

// Option is one `name = value` line. Value is a string, bool, int64, float64, []any,
// map[string]any, Credential or LuaCode.
type Option struct {
	Name  string   `json:"name"`
	Value any      `json:"value"`
	Why   []string `json:"why"`
}

// SectionPlan is the content of the global section, a VirtualHost or a Component.
type SectionPlan struct {
	Modules  []Module `json:"modules"`
	Disabled []Module `json:"disabled_modules,omitempty"`
	Options  []Option `json:"options"`
}

// HostPlan is one VirtualHost.
type HostPlan struct {
	Domain string `json:"domain"`
	SectionPlan
}

// ComponentPlan is one Component: `Component "<Address>" "<Type>"`.
type ComponentPlan struct {
	Name    string   `json:"name"`
	Domain  string   `json:"domain"`
	Address string   `json:"address"`
	Type    string   `json:"type"`
	Why     []string `json:"why"`
	SectionPlan
}

// Removed is something that is not in the rendered config, and why.
type Removed struct {
	Kind    string   `json:"kind"` // "module", "option" or "feature"
	Name    string   `json:"name"`
	Section string   `json:"section,omitempty"` // "global", "host" or "component <name>"
	Why     []string `json:"why"`
}

// Credential renders as Credential("Name"): Prosody 13 reads the secret from
// $CREDENTIALS_DIRECTORY/Name, so it never appears in the rendered file.
type Credential struct {
	Name string `json:"$credential"`
}

// LuaCode is raw Lua from a `{"$lua": ...}` value. Source is the tree file it came from; the
// renderer refuses LuaCode without a Source, so no input can become code.
type LuaCode struct {
	Code   string `json:"$lua"`
	Source string `json:"source"`
}

// layerRef is one layer in application order.
type layerRef struct {
	label   string // "core/global", "feature messaging/archive (profile standard)", ...
	feature string
	source  string
	layer   *Layer
}

// Plan resolves the profile, features and environment named in in. Errors list every
// problem found (unknown names with suggestions, conflicts with both origins, unsupported
// features with what to use instead).
func (t *Tree) Plan(in Inputs) (*Plan, error) {
	var errs []error
	prof := t.profiles[in.Profile]
	if prof == nil && in.Profile == "custom" {
		errs = append(errs, fmt.Errorf("profile \"custom\" does not exist: the design's custom profile is the directory of your own profiles (profiles/custom/), not a profile; here each of your profiles has its own name in the custom directory (PROSODY_CUSTOM_DIR/profiles/<name>/profile.json, made by entrypoint profiles create NAME); use PROSODY_PROFILE=<name>; profiles: %s", strings.Join(t.Profiles(), ", ")))
	} else if prof == nil {
		errs = append(errs, fmt.Errorf("profile %q does not exist%s; profiles: %s", in.Profile, t.suggest(&in, in.Profile, t.Profiles()), strings.Join(t.Profiles(), ", ")))
	}
	env := t.environments[in.Environment]
	if env == nil {
		errs = append(errs, fmt.Errorf("environment %q does not exist%s; environments: %s", in.Environment, t.suggest(&in, in.Environment, t.Environments()), strings.Join(t.Environments(), ", ")))
	}
	if len(in.Domains) == 0 {
		errs = append(errs, errors.New("no domains: at least one domain is needed for a VirtualHost"))
	}
	for _, d := range in.Domains {
		if d == "" || strings.ContainsAny(d, " \t\r\n\"'\\/@") {
			errs = append(errs, fmt.Errorf("domain %q is not a host name", d))
		}
	}
	if in.LogLevel != "" && !validLogLevel(in.LogLevel) {
		errs = append(errs, fmt.Errorf("log level %q: accepted are debug, info, warn, error", in.LogLevel))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sel, err := t.selectFeatures(&in, prof)
	if err != nil {
		return nil, err
	}
	p := &Plan{
		Profile: prof.Name, Environment: env.Name, Domains: append([]string(nil), in.Domains...),
		LogLevel: in.LogLevel, TLS: env.TLS, Warnings: sel.warnings, Shadowed: t.Shadowed(),
	}
	if p.LogLevel == "" {
		p.LogLevel = env.LogLevel
	}
	if p.LogLevel == "" {
		p.LogLevel = "info"
	}
	var layers []layerRef
	for i := range t.core {
		c := &t.core[i]
		layers = append(layers, layerRef{label: c.name, source: c.source, layer: &c.layer})
	}
	// The VirtualHost template is where every host section starts: after the core files
	// (which have none) and before everything that may override it.
	if v := t.vhost; v != nil {
		layers = append(layers, layerRef{label: v.name, source: v.source, layer: &v.layer})
	}
	// Features first, then the profile: a profile tunes the features it names
	// (a longer archive, a bigger upload limit) and its settings must win over
	// the features' defaults. The environment still comes last.
	for _, name := range sel.order {
		f := t.features[name]
		why := sel.why[name][0]
		disco := (*Disco)(nil).merge(f.Disco)
		for _, pn := range sel.parts[name] {
			disco = disco.merge(f.Parts[pn].Disco)
		}
		p.Features = append(p.Features, PlannedFeature{
			Name: name, Why: sel.why[name], Parts: sel.parts[name], Stability: f.Stability,
			Packages: f.Packages, CommunityModules: f.CommunityModules, Disco: disco, Source: f.Source,
		})
		layers = append(layers, layerRef{label: "feature " + name + " (" + why + ")", feature: name, source: f.Source, layer: &f.Layer})
		for _, pn := range sel.parts[name] {
			part := f.Parts[pn]
			layers = append(layers, layerRef{
				label:   "feature " + name + " part " + pn + " (" + sel.partWhy[name+"/"+pn] + ")",
				feature: name, source: f.Source, layer: &part.Layer,
			})
		}
	}
	layers = append(layers, layerRef{label: "profile " + prof.Name, source: prof.Source, layer: &prof.Layer})
	layers = append(layers, layerRef{label: "environment " + env.Name, source: env.Source, layer: &env.Layer})

	b := newBuilder(&in, p.LogLevel)
	b.treeDir = in.ConfigDir
	if b.treeDir == "" {
		b.treeDir, _ = filepath.Abs(t.builtinDir)
	}
	for _, l := range layers {
		b.apply(l, l.label, l.layer)
	}
	for _, m := range in.ExtraModules {
		if err := checkModuleName("PROSODY_EXTRA_MODULES", "module", m); err != nil {
			b.errs = append(b.errs, err...)
			continue
		}
		b.global.addModule(m, "", "PROSODY_EXTRA_MODULES")
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	t.recordOff(b, sel, prof)
	if err := b.finish(p); err != nil {
		return nil, err
	}
	if in.Legacy {
		p.Legacy = append(p.Legacy, t.legacy...)
	}
	return p, nil
}

// recordOff records the modules and options of features that are not enabled, so Explain
// can say why something is absent.
func (t *Tree) recordOff(b *builder, sel *selection, prof *Profile) {
	for _, name := range t.Features() {
		if _, on := sel.why[name]; on {
			continue
		}
		why := "feature " + name + " is not enabled (not in profile " + prof.Name + "; enable it with " + GenericToggle(name) + "=true)"
		if f := t.features[name]; f.Stability == StabilityUnsupported {
			why = "feature " + name + " cannot be enabled: " + f.Unsupported.Reason + "; instead: " + f.Unsupported.Instead
		}
		if off, ok := sel.off[name]; ok {
			why = "feature " + name + " is off: " + off
		}
		b.removed[removedKey("feature", "", name)] = &Removed{Kind: "feature", Name: name, Why: []string{why}}
		f := t.features[name]
		b.recordLayerOff(&f.Layer, why)
		for _, pn := range sortedKeys(f.Parts) {
			part := f.Parts[pn]
			b.recordLayerOff(&part.Layer, why)
		}
	}
}

func removedKey(kind, section, name string) string { return kind + "\x00" + section + "\x00" + name }

// sectionState accumulates one section while layers are applied.
type sectionState struct {
	name     string // "global", "host", "component muc"
	modules  map[string]*Module
	disabled map[string]*Module
	options  map[string]*Option
	removed  map[string]*Removed
}

func newSection(name string, removed map[string]*Removed) *sectionState {
	return &sectionState{name: name, modules: map[string]*Module{}, disabled: map[string]*Module{}, options: map[string]*Option{}, removed: removed}
}

func (s *sectionState) addModule(name, feature, why string) {
	delete(s.removed, removedKey("module", s.name, name))
	if m, ok := s.modules[name]; ok {
		m.Why = append(m.Why, why)
		return
	}
	s.modules[name] = &Module{Name: name, Feature: feature, Why: []string{why}}
}

func (s *sectionState) removeModule(name, why string) {
	r := &Removed{Kind: "module", Name: name, Section: s.name}
	if m, ok := s.modules[name]; ok {
		r.Why = append(r.Why, m.Why...)
		delete(s.modules, name)
	}
	r.Why = append(r.Why, "removed by "+why)
	s.removed[removedKey("module", s.name, name)] = r
}

func (s *sectionState) setOption(name string, value any, why string) {
	delete(s.removed, removedKey("option", s.name, name))
	if o, ok := s.options[name]; ok {
		o.Value = value
		o.Why = append(o.Why, why)
		return
	}
	s.options[name] = &Option{Name: name, Value: value, Why: []string{why}}
}

func (s *sectionState) unsetOption(name, why string) {
	r := &Removed{Kind: "option", Name: name, Section: s.name}
	if o, ok := s.options[name]; ok {
		r.Why = append(r.Why, o.Why...)
		delete(s.options, name)
	}
	r.Why = append(r.Why, "set to null by "+why)
	s.removed[removedKey("option", s.name, name)] = r
}

func (s *sectionState) plan() SectionPlan {
	sp := SectionPlan{Modules: []Module{}, Options: []Option{}}
	for _, k := range sortedKeys(s.modules) {
		sp.Modules = append(sp.Modules, *s.modules[k])
	}
	for _, k := range sortedKeys(s.disabled) {
		sp.Disabled = append(sp.Disabled, *s.disabled[k])
	}
	for _, k := range sortedKeys(s.options) {
		sp.Options = append(sp.Options, *s.options[k])
	}
	return sp
}

type componentState struct {
	typ, subdomain string
	why            []string
	section        *sectionState
}

// builder applies layers in order.
type builder struct {
	in         *Inputs
	treeDir    string // the built-in tree, for $tree values
	logLevel   string
	global     *sectionState
	host       *sectionState
	components map[string]*componentState
	removed    map[string]*Removed
	errs       []error
}

func newBuilder(in *Inputs, logLevel string) *builder {
	removed := map[string]*Removed{}
	return &builder{
		in: in, logLevel: logLevel, removed: removed, components: map[string]*componentState{},
		global: newSection("global", removed), host: newSection("host", removed),
	}
}

func (b *builder) apply(ref layerRef, label string, l *Layer) {
	b.applySection(ref, label, b.global, l.Global)
	b.applySection(ref, label, b.host, l.Host)
	for _, name := range sortedKeys(l.Components) {
		spec := l.Components[name]
		c := b.components[name]
		if c == nil {
			c = &componentState{section: newSection("component "+name, b.removed)}
			b.components[name] = c
		}
		if spec.Type != "" || spec.Subdomain != "" {
			c.why = append(c.why, label)
		}
		if spec.Type != "" {
			c.typ = spec.Type
		}
		if spec.Subdomain != "" {
			c.subdomain = spec.Subdomain
		}
		b.applySection(ref, label, c.section, &Section{Modules: spec.Modules, Settings: spec.Settings})
	}
	for i := range l.When {
		w := &l.When[i]
		if cond, ok := b.matches(w.If); ok {
			b.apply(ref, label+" (when "+cond+")", &w.Layer)
		}
	}
}

func (b *builder) applySection(ref layerRef, label string, s *sectionState, sec *Section) {
	if sec == nil {
		return
	}
	for _, m := range sec.Modules {
		s.addModule(m, ref.feature, label)
	}
	for _, m := range sec.RemoveModules {
		s.removeModule(m, label)
	}
	for _, m := range sec.DisableModules {
		if d, ok := s.disabled[m]; ok {
			d.Why = append(d.Why, label)
		} else {
			s.disabled[m] = &Module{Name: m, Feature: ref.feature, Why: []string{label}}
		}
	}
	for _, name := range sortedKeys(sec.Settings) {
		raw := sec.Settings[name]
		v, err := decodeValue(raw)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s: option %s: %w", ref.source, name, err))
			continue
		}
		if v == nil {
			s.unsetOption(name, label)
			continue
		}
		val, set, err := b.resolve(v, ref.source, true)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s: option %s: %w", ref.source, name, err))
			continue
		}
		if set {
			s.setOption(name, val, label)
		}
	}
}

// recordLayerOff records a disabled feature's modules and options as removed, unless
// something else put them in.
func (b *builder) recordLayerOff(l *Layer, why string) {
	rec := func(kind, section, name string, present bool) {
		k := removedKey(kind, section, name)
		if _, ok := b.removed[k]; present || ok {
			return
		}
		b.removed[k] = &Removed{Kind: kind, Name: name, Section: section, Why: []string{why}}
	}
	for _, sec := range []struct {
		st *sectionState
		s  *Section
	}{{b.global, l.Global}, {b.host, l.Host}} {
		if sec.s == nil {
			continue
		}
		for _, m := range sec.s.Modules {
			_, ok := sec.st.modules[m]
			rec("module", sec.st.name, m, ok)
		}
		for name := range sec.s.Settings {
			_, ok := sec.st.options[name]
			rec("option", sec.st.name, name, ok)
		}
	}
	for cname, spec := range l.Components {
		c, have := b.components[cname]
		for _, m := range append([]string{spec.Type}, spec.Modules...) {
			if m == "" {
				continue
			}
			ok := have && (c.section.modules[m] != nil || c.typ == m)
			rec("module", "component "+cname, m, ok)
		}
		for name := range spec.Settings {
			ok := have && c.section.options[name] != nil
			rec("option", "component "+cname, name, ok)
		}
	}
	for i := range l.When {
		b.recordLayerOff(&l.When[i].Layer, why)
	}
}

func (b *builder) finish(p *Plan) error {
	p.Global = b.global.plan()
	host := b.host.plan()
	for _, d := range p.Domains {
		p.Hosts = append(p.Hosts, HostPlan{Domain: d, SectionPlan: host})
	}
	var errs []error
	for _, name := range sortedKeys(b.components) {
		c := b.components[name]
		if c.typ == "" || c.subdomain == "" {
			errs = append(errs, fmt.Errorf("component %q has no \"type\" or \"subdomain\" after all layers (touched by: %s)", name, strings.Join(append(c.why, "layers adding modules or settings"), "; ")))
			continue
		}
		sp := c.section.plan()
		for _, d := range p.Domains {
			p.Components = append(p.Components, ComponentPlan{
				Name: name, Domain: d, Address: c.subdomain + "." + d, Type: c.typ, Why: c.why, SectionPlan: sp,
			})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	keys := sortedKeys(b.removed)
	for _, k := range keys {
		p.Removed = append(p.Removed, *b.removed[k])
	}
	sort.SliceStable(p.Removed, func(i, j int) bool { return p.Removed[i].Kind < p.Removed[j].Kind })
	return nil
}

// matches evaluates a `when` condition; it returns a readable form ("storage=postgres").
func (b *builder) matches(cond map[string]json.RawMessage) (string, bool) {
	var parts []string
	for _, name := range sortedKeys(cond) {
		want, _ := decodeValue(cond[name])
		have, set := b.in.inputValue(name, b.logLevel)
		alts := []any{want}
		if list, ok := want.([]any); ok {
			alts = list
		}
		hit := false
		for _, a := range alts {
			switch x := a.(type) {
			case nil:
				hit = hit || !set
			case json.Number:
				hit = hit || set && conditionString(have) == x.String()
			default:
				hit = hit || set && conditionString(have) == conditionString(x)
			}
		}
		if !hit {
			return "", false
		}
		parts = append(parts, name+"="+strings.Trim(string(cond[name]), `"`))
	}
	return strings.Join(parts, ","), true
}
