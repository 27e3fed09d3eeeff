package pfe

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// selection is the outcome of feature resolution.
type selection struct {
	order    []string            // enabled features, dependency order then name
	why      map[string][]string // enabled feature -> origin chain
	parts    map[string][]string // enabled feature -> enabled parts, sorted
	partWhy  map[string]string   // "feature/part" -> origin
	off      map[string]string   // explicitly disabled feature -> origin
	warnings []string
}

// explicitChoice is one feature or part switched by a toggle or the list form.
type explicitChoice struct {
	feature string
	part    string // "" for the feature itself
	on      bool
	origin  string
}

func (t *Tree) suggest(_ *Inputs, name string, candidates []string) string {
	return didYouMean(name, candidates)
}

// toggleTargets maps every accepted toggle name to the features (or the one feature part)
// it switches. A feature's extra toggle may be shared by several features: the design's
// PROSODY_FEATURES_WEB_ENABLED switches web/http and web/websocket together.
func (t *Tree) toggleTargets() map[string][][2]string {
	targets := map[string][][2]string{}
	for _, name := range sortedKeys(t.features) {
		f := t.features[name]
		targets[GenericToggle(name)] = append(targets[GenericToggle(name)], [2]string{name, ""})
		for _, tg := range f.Toggles {
			if tg != GenericToggle(name) {
				targets[tg] = append(targets[tg], [2]string{name, ""})
			}
		}
		for pn, p := range f.Parts {
			for _, tg := range p.Toggles {
				targets[tg] = append(targets[tg], [2]string{name, pn})
			}
		}
	}
	return targets
}

// explicitChoices parses Toggles and FeatureList. Every problem is returned.
func (t *Tree) explicitChoices(in *Inputs) ([]explicitChoice, []error) {
	var choices []explicitChoice
	var errs []error
	targets := t.toggleTargets()
	for _, name := range sortedKeys(in.Toggles) {
		raw := in.Toggles[name]
		var on bool
		switch strings.ToLower(strings.TrimSpace(raw)) {
		case "true":
			on = true
		case "false":
		default:
			errs = append(errs, fmt.Errorf("%s=%q: accepted values are true and false", shown(name), raw))
			continue
		}
		tgs, ok := targets[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no feature or part has this toggle%s; list them with `entrypoint features list`", shown(name), t.suggest(in, name, sortedKeys(targets))))
			continue
		}
		for _, tg := range tgs {
			choices = append(choices, explicitChoice{feature: tg[0], part: tg[1], on: on, origin: fmt.Sprintf("toggle %s=%t", name, on)})
		}
	}
	for _, item := range strings.Split(in.FeatureList, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		on := true
		name := item
		switch item[0] {
		case '+':
			name = item[1:]
		case '-':
			on, name = false, item[1:]
		}
		if _, ok := t.features[name]; !ok {
			errs = append(errs, fmt.Errorf("PROSODY_FEATURES: %q: unknown feature%s; write +group/name or -group/name", item, t.suggest(in, name, t.Features())))
			continue
		}
		sign := "+"
		if !on {
			sign = "-"
		}
		choices = append(choices, explicitChoice{feature: name, on: on, origin: "PROSODY_FEATURES " + sign + name})
	}
	return choices, errs
}

// selectFeatures resolves the profile's features, toggles, requires and conflicts.
func (t *Tree) selectFeatures(in *Inputs, p *Profile) (*selection, error) {
	sel := &selection{why: map[string][]string{}, parts: map[string][]string{}, partWhy: map[string]string{}, off: map[string]string{}}
	choices, errs := t.explicitChoices(in)
	origin := map[string]string{} // enabled feature -> first origin
	for _, f := range p.Features {
		origin[f] = "profile " + p.Name
	}
	explicit := map[string]explicitChoice{}
	partChoice := map[string]explicitChoice{}
	for _, c := range choices {
		key := c.feature
		m := explicit
		if c.part != "" {
			key, m = c.feature+"#"+c.part, partChoice
		}
		if prev, ok := m[key]; ok && prev.on != c.on {
			errs = append(errs, fmt.Errorf("%s contradicts %s", c.origin, prev.origin))
			continue
		}
		m[key] = c
	}
	for _, name := range sortedKeys(explicit) {
		c := explicit[name]
		if c.on {
			if _, ok := origin[name]; !ok {
				origin[name] = c.origin
			}
		} else {
			if prof, ok := origin[name]; ok {
				sel.off[name] = prof + ", disabled by " + c.origin
			} else {
				sel.off[name] = "disabled by " + c.origin
			}
			delete(origin, name)
		}
	}
	// A feature the profile named (no toggle asked for it) goes off with a feature it
	// requires that a toggle switched off: PROSODY_FEATURES_WEB_ENABLED=false takes
	// web/upload and admin/monitoring with web/http. A feature switched on explicitly
	// still needs what it requires (an error below).
	for changed := true; changed; {
		changed = false
		for _, name := range sortedKeys(origin) {
			if c, ok := explicit[name]; ok && c.on {
				continue
			}
			for _, r := range t.features[name].Requires {
				if off, ok := sel.off[r]; ok {
					sel.off[name] = origin[name] + ", off with " + r + ", which it requires (" + off + ")"
					delete(origin, name)
					changed = true
					break
				}
			}
		}
	}
	// Close over requires, breadth-first in name order for stable origins.
	queue := sortedKeys(origin)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		for _, r := range t.features[name].Requires {
			if _, ok := origin[r]; ok {
				continue
			}
			if off, ok := sel.off[r]; ok {
				errs = append(errs, fmt.Errorf("feature %s (%s) requires %s, which is off (%s): enable %s or disable %s", name, origin[name], r, off, r, name))
				continue
			}
			origin[r] = "required by " + name + " (" + origin[name] + ")"
			queue = append(queue, r)
		}
	}
	enabled := sortedKeys(origin)
	for _, name := range enabled {
		f := t.features[name]
		if f.Stability == StabilityUnsupported {
			errs = append(errs, fmt.Errorf("feature %s cannot be enabled (%s): %s; instead: %s", name, origin[name], prose(f.Unsupported.Reason), prose(f.Unsupported.Instead)))
		}
		for _, c := range f.Conflicts {
			if _, ok := origin[c]; !ok || slices.Contains(t.features[c].Conflicts, name) && c < name {
				continue // not enabled, or reported from c's side
			}
			errs = append(errs, fmt.Errorf("feature %s (%s) conflicts with %s (%s): disable one of them", name, origin[name], c, origin[c]))
		}
	}
	for _, key := range sortedKeys(partChoice) {
		c := partChoice[key]
		if _, ok := origin[c.feature]; !ok {
			sel.warnings = append(sel.warnings, fmt.Sprintf("%s has no effect: feature %s is not enabled", c.origin, c.feature))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sel.order = t.dependencyOrder(enabled)
	for _, name := range sel.order {
		sel.why[name] = []string{origin[name]}
		f := t.features[name]
		on, why := map[string]bool{}, map[string]string{}
		for _, pn := range sortedKeys(f.Parts) {
			on[pn], why[pn] = f.Parts[pn].Default, "default"
			if c, ok := partChoice[name+"#"+pn]; ok {
				on[pn], why[pn] = c.on, c.origin
			}
		}
		// A part is off while a part it requires is off (SASL2=false takes Bind2 and FAST).
		for changed := true; changed; {
			changed = false
			for _, pn := range sortedKeys(f.Parts) {
				for _, r := range f.Parts[pn].Requires {
					if !on[pn] || on[r] {
						continue
					}
					if c, ok := partChoice[name+"#"+pn]; ok && c.on {
						sel.warnings = append(sel.warnings, fmt.Sprintf("%s has no effect: part %s of %s needs part %s, which is off (%s)", c.origin, pn, name, r, why[r]))
					}
					on[pn], why[pn], changed = false, "off with part "+r+", which it needs ("+why[r]+")", true
				}
			}
		}
		for _, pn := range sortedKeys(f.Parts) {
			if on[pn] {
				sel.parts[name] = append(sel.parts[name], pn)
			}
			sel.partWhy[name+"/"+pn] = why[pn]
		}
	}
	return sel, nil
}

// dependencyOrder sorts enabled features so that each comes after what it requires, ties
// broken by name. Requires cycles fall back to name order for the features in the cycle.
func (t *Tree) dependencyOrder(enabled []string) []string {
	indeg := map[string]int{}
	dependents := map[string][]string{}
	for _, n := range enabled {
		indeg[n] += 0
		for _, r := range t.features[n].Requires {
			if slices.Contains(enabled, r) {
				indeg[n]++
				dependents[r] = append(dependents[r], n)
			}
		}
	}
	var ready, out []string
	for _, n := range enabled {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	done := map[string]bool{}
	for len(out) < len(enabled) {
		if len(ready) == 0 { // a cycle: take the smallest remaining name
			for _, n := range enabled {
				if !done[n] {
					ready = append(ready, n)
					break
				}
			}
		}
		sort.Strings(ready)
		n := ready[0]
		ready = ready[1:]
		if done[n] {
			continue
		}
		done[n] = true
		out = append(out, n)
		for _, d := range dependents[n] {
			indeg[d]--
			if indeg[d] == 0 && !done[d] {
				ready = append(ready, d)
			}
		}
	}
	return out
}
