package pfe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/prosody-pfe/prosody-pfe/pkg/suggest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Names the tree may use. Module names are what Prosody's plugin loader accepts; option
// names must be Lua identifiers because they are rendered as `name = value`.
var (
	moduleNameRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`) })
	identifierRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
	credentialNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`) })
	subdomainRE      = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	})
	toggleRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^PROSODY_FEATURES_[A-Z0-9_]+$`) })
)

// IsLuaIdentifier reports whether s is a Lua 5.1 name that is not a keyword.
func IsLuaIdentifier(s string) bool {
	if !identifierRE().MatchString(s) {
		return false
	}
	switch s {
	case "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
		"in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while":
		return false
	}
	return true
}

func validateFeature(path string, f *Feature) []error {
	var errs []error
	switch f.Stability {
	case "", StabilityStable, StabilityBeta, StabilityExperimental:
		if f.Unsupported != nil {
			errs = append(errs, fmt.Errorf("%s: key \"unsupported\" is set but \"stability\" is %q: set stability to \"unsupported\" or drop the key", path, f.Stability))
		}
	case StabilityUnsupported:
		if f.Unsupported == nil || f.Unsupported.Reason == "" || f.Unsupported.Instead == "" {
			errs = append(errs, fmt.Errorf("%s: key \"unsupported\" needs \"reason\" and \"instead\" when stability is \"unsupported\"", path))
		}
	default:
		errs = append(errs, fmt.Errorf("%s: key \"stability\" is %q: accepted are stable, beta, experimental, unsupported", path, f.Stability))
	}
	for _, tg := range f.Toggles {
		if !toggleRE().MatchString(tg) {
			errs = append(errs, fmt.Errorf("%s: key \"toggles\": %q is not a PROSODY_FEATURES_<NAME> variable name (A-Z, 0-9, _)", path, tg))
		}
	}
	for _, r := range f.Requires {
		if r == f.Name {
			errs = append(errs, fmt.Errorf("%s: key \"requires\": a feature cannot require itself", path))
		}
	}
	for _, pn := range sortedKeys(f.Parts) {
		p := f.Parts[pn]
		if !identifierRE().MatchString(pn) && !moduleNameRE().MatchString(pn) {
			errs = append(errs, fmt.Errorf("%s: key \"parts.%s\": part names use a-z, 0-9, _ and -", path, pn))
		}
		for _, tg := range p.Toggles {
			if !toggleRE().MatchString(tg) {
				errs = append(errs, fmt.Errorf("%s: key \"parts.%s.toggles\": %q is not a PROSODY_FEATURES_<NAME> variable name", path, pn, tg))
			}
		}
		for _, r := range p.Requires {
			if _, ok := f.Parts[r]; !ok || r == pn {
				errs = append(errs, fmt.Errorf("%s: key \"parts.%s.requires\": %q is not another part of this feature; parts: %s", path, pn, r, strings.Join(sortedKeys(f.Parts), ", ")))
			}
		}
		errs = append(errs, validateLayer(path, "parts."+pn+".", &p.Layer)...)
		errs = append(errs, validateDisco(path, "parts."+pn+".disco", p.Disco, featureComponents(f))...)
	}
	errs = append(errs, validateLayer(path, "", &f.Layer)...)
	errs = append(errs, validateDisco(path, "disco", f.Disco, featureComponents(f))...)
	return errs
}

// featureComponents is the set of component names a feature or one of its
// parts (or their `when` layers) adds to.
func featureComponents(f *Feature) map[string]bool {
	set := map[string]bool{}
	var walk func(l *Layer)
	walk = func(l *Layer) {
		for n := range l.Components {
			set[n] = true
		}
		for i := range l.When {
			walk(&l.When[i].Layer)
		}
	}
	walk(&f.Layer)
	for _, p := range f.Parts {
		walk(&p.Layer)
	}
	return set
}

// validateDisco checks the namespaces of a "disco" key: each is a non-empty
// token, and each component named is one the feature adds.
func validateDisco(path, key string, d *Disco, components map[string]bool) []error {
	if d == nil {
		return nil
	}
	var errs []error
	check := func(k string, list []string) {
		for _, ns := range list {
			if ns == "" || strings.ContainsAny(ns, " \t\r\n<>'\"&") {
				errs = append(errs, fmt.Errorf("%s: key %q: %q is not a namespace (a URI or urn without spaces or XML characters)", path, k, ns))
			}
		}
	}
	check(key+".server", d.Server)
	check(key+".account", d.Account)
	check(key+".stream", d.Stream)
	for _, name := range sortedKeys(d.Components) {
		if !components[name] {
			errs = append(errs, fmt.Errorf("%s: key %q: component %q is not one this feature adds (its \"components\" keys: %s)", path, key+".components", name, strings.Join(sortedKeys(components), ", ")))
		}
		check(key+".components."+name, d.Components[name])
	}
	return errs
}

// validateLayer checks module names, option names, values and `when` conditions; prefix is
// the key path of the layer inside the file ("" at the top).
func validateLayer(path, prefix string, l *Layer) []error {
	var errs []error
	section := func(key string, s *Section) {
		if s == nil {
			return
		}
		for _, list := range []struct {
			key  string
			mods []string
		}{{"modules", s.Modules}, {"remove_modules", s.RemoveModules}, {"disable_modules", s.DisableModules}} {
			for _, m := range list.mods {
				errs = append(errs, checkModuleName(path, prefix+key+"."+list.key, m)...)
			}
		}
		errs = append(errs, checkSettings(path, prefix+key+".settings", s.Settings)...)
	}
	section("global", l.Global)
	section("host", l.Host)
	for _, name := range sortedKeys(l.Components) {
		c := l.Components[name]
		key := prefix + "components." + name
		if !moduleNameRE().MatchString(name) {
			errs = append(errs, fmt.Errorf("%s: key %q: component names use a-z, 0-9, _, . and -", path, key))
		}
		if c.Type != "" {
			errs = append(errs, checkModuleName(path, key+".type", c.Type)...)
		}
		if c.Subdomain != "" && !subdomainRE().MatchString(c.Subdomain) {
			errs = append(errs, fmt.Errorf("%s: key %q: subdomain %q is not a DNS label (a-z, 0-9, -, dots between labels)", path, key+".subdomain", c.Subdomain))
		}
		for _, m := range c.Modules {
			errs = append(errs, checkModuleName(path, key+".modules", m)...)
		}
		errs = append(errs, checkSettings(path, key+".settings", c.Settings)...)
	}
	for i := range l.When {
		w := &l.When[i]
		key := fmt.Sprintf("%swhen[%d]", prefix, i)
		if len(w.If) == 0 {
			errs = append(errs, fmt.Errorf("%s: key %q: \"if\" needs at least one plan input", path, key+".if"))
		}
		for _, in := range sortedKeys(w.If) {
			if !isInputName(in) {
				errs = append(errs, fmt.Errorf("%s: key %q: unknown plan input %q (the inputs are listed in docs/config-format.md)", path, key+".if."+in, in))
				continue
			}
			if err := checkCondition(w.If[in]); err != nil {
				errs = append(errs, fmt.Errorf("%s: key %q: %w", path, key+".if."+in, err))
			}
		}
		errs = append(errs, validateLayer(path, key+".", &w.Layer)...)
	}
	return errs
}

// checkNoHost refuses host sections in a core file (and its `when` blocks): the defaults
// of every VirtualHost live in one place, templates/vhost.json.
func checkNoHost(path, prefix string, l *Layer) []error {
	var errs []error
	if l.Host != nil {
		errs = append(errs, fmt.Errorf("%s: key %q: core files hold the global section only; the defaults of every VirtualHost live in templates/%s", path, prefix+"host", VHostTemplateFile))
	}
	for i := range l.When {
		errs = append(errs, checkNoHost(path, fmt.Sprintf("%swhen[%d].", prefix, i), &l.When[i].Layer)...)
	}
	return errs
}

// checkHostOnly refuses global and component sections in the `when` blocks of the
// VirtualHost template: it holds what every VirtualHost gets, nothing else.
func checkHostOnly(path, prefix string, l *Layer) []error {
	var errs []error
	if l.Global != nil {
		errs = append(errs, fmt.Errorf("%s: key %q: the VirtualHost template holds host sections only; put global options in a feature, a profile or a core file", path, prefix+"global"))
	}
	if len(l.Components) > 0 {
		errs = append(errs, fmt.Errorf("%s: key %q: the VirtualHost template holds host sections only; a Component comes from a feature (entrypoint features create NAME --component TYPE)", path, prefix+"components"))
	}
	for i := range l.When {
		errs = append(errs, checkHostOnly(path, fmt.Sprintf("%swhen[%d].", prefix, i), &l.When[i].Layer)...)
	}
	return errs
}

func checkModuleName(path, key, m string) []error {
	switch {
	case strings.HasPrefix(m, "mod_"):
		return []error{fmt.Errorf("%s: key %q: %q: write module names without the mod_ prefix (%q)", path, key, m, strings.TrimPrefix(m, "mod_"))}
	case !moduleNameRE().MatchString(m):
		return []error{fmt.Errorf("%s: key %q: %q is not a module name (a-z, 0-9, _, . and -)", path, key, m)}
	}
	return nil
}

func checkSettings(path, key string, settings map[string]json.RawMessage) []error {
	var errs []error
	for _, name := range sortedKeys(settings) {
		if !IsLuaIdentifier(name) {
			errs = append(errs, fmt.Errorf("%s: key %q: option name %q is not a Lua identifier", path, key+"."+name, name))
			continue
		}
		v, err := decodeValue(settings[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: key %q: %w", path, key+"."+name, err))
			continue
		}
		if err := checkValue(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: key %q: %w", path, key+"."+name, err))
		}
	}
	return errs
}

// decodeValue decodes a setting value keeping numbers exact (json.Number).
func decodeValue(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode value: %w", err)
	}
	return v, nil
}

// specialKey returns the single "$" key of an object, or "".
func specialKey(m map[string]any) (string, error) {
	var special string
	for k := range m {
		if strings.HasPrefix(k, "$") {
			special = k
		}
	}
	if special == "" {
		return "", nil
	}
	if len(m) != 1 {
		return "", fmt.Errorf("an object with %q must have no other keys", special)
	}
	switch special {
	case "$var", "$credential", "$lua", "$tree":
	default:
		return "", fmt.Errorf("unknown special key %q: accepted are $var, $credential, $lua, $tree", special)
	}
	return special, nil
}

func checkValue(v any) error {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			if e == nil {
				return fmt.Errorf("element %d is null: Lua sequences cannot hold nil", i)
			}
			if err := checkValue(e); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	case map[string]any:
		special, err := specialKey(x)
		if err != nil {
			return err
		}
		if special == "" {
			for _, k := range sortedKeys(x) {
				if x[k] == nil {
					return fmt.Errorf("key %q is null: Lua tables cannot hold nil", k)
				}
				if err := checkValue(x[k]); err != nil {
					return fmt.Errorf("key %q: %w", k, err)
				}
			}
			return nil
		}
		s, ok := x[special].(string)
		if !ok {
			return fmt.Errorf("%s takes a string", special)
		}
		switch special {
		case "$var":
			if !isInputName(s) {
				return fmt.Errorf("$var %q is not a plan input (the inputs are listed in docs/config-format.md)", s)
			}
		case "$credential":
			if !credentialNameRE().MatchString(s) {
				return fmt.Errorf("$credential %q is not a credential file name (A-Z, a-z, 0-9, _, . and -)", s)
			}
		case "$lua":
			if strings.TrimSpace(s) == "" {
				return fmt.Errorf("$lua is empty")
			}
		case "$tree":
			if s == "" || filepath.IsAbs(s) || filepath.Clean(s) != s || strings.HasPrefix(s, "..") {
				return fmt.Errorf("$tree %q is not a clean path inside the config tree (such as firewall/production-rules.pfw)", s)
			}
		}
	}
	return nil
}

func checkCondition(raw json.RawMessage) error {
	v, err := decodeValue(raw)
	if err != nil {
		return err
	}
	scalar := func(v any) bool {
		switch v.(type) {
		case nil, string, bool, json.Number:
			return true
		}
		return false
	}
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if !scalar(e) {
				return fmt.Errorf("condition lists hold strings, booleans, numbers or null")
			}
		}
		return nil
	}
	if !scalar(v) {
		return fmt.Errorf("a condition is a string, boolean, number, null or a list of them")
	}
	return nil
}

// didYouMean returns " (did you mean X?)" for the closest candidate, or "".
func didYouMean(name string, candidates []string) string {
	if s := suggest.Closest(name, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %s?)", s)
	}
	return ""
}
