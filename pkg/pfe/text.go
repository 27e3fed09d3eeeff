package pfe

import (
	"fmt"
	"io"
	"strings"
)

// WriteProfileText prints the profile for a person: name, source, description, users,
// resource requirements, the features it names one per line, and its optional features
// each with the toggle that switches it on.
func (t *Tree) WriteProfileText(w io.Writer, p *Profile) {
	fmt.Fprintf(w, "profile %s (%s)\n  %s\n  users: %s\n", p.Name, p.Source, p.Description, strings.Trim(string(p.Users), `"`))
	if r := p.ResourceRequirements; r != nil {
		fmt.Fprintf(w, "  resource requirements: memory %s, cpu %s, storage %s\n", orDash(r.Memory), orDash(r.CPU), orDash(r.Storage))
	}
	fmt.Fprintf(w, "  features:\n")
	for _, f := range p.Features {
		fmt.Fprintf(w, "    %s\n", f)
	}
	if len(p.OptionalFeatures) > 0 {
		fmt.Fprintf(w, "  optional features (off; switch on with):\n")
		for _, name := range p.OptionalFeatures {
			how := GenericToggle(name) + "=true"
			if f := t.features[name]; f != nil && f.Stability == StabilityUnsupported {
				how = "cannot be enabled: " + f.Unsupported.Reason
			} else if f != nil && len(f.Toggles) > 0 {
				how = f.Toggles[0] + "=true"
			}
			fmt.Fprintf(w, "    %-24s %s\n", name, how)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteText prints the feature for a person: what it is, its toggles, what
// it needs and conflicts with, and its parts.
func (f *Feature) WriteText(w io.Writer) {
	fmt.Fprintf(w, "feature %s (%s, %s)\n  %s\n", f.Name, f.Stability, f.Source, f.Description)
	if f.Unsupported != nil {
		fmt.Fprintf(w, "  unsupported: %s; instead: %s\n", f.Unsupported.Reason, f.Unsupported.Instead)
	}
	fmt.Fprintf(w, "  toggles: %s\n", strings.Join(f.AllToggles(), ", "))
	for _, kv := range [][2]string{{"xeps", strings.Join(f.XEPs, ", ")}, {"requires", strings.Join(f.Requires, ", ")},
		{"conflicts", strings.Join(f.Conflicts, ", ")}, {"packages", strings.Join(f.Packages, ", ")},
		{"community modules", strings.Join(f.CommunityModules, ", ")}} {
		if kv[1] != "" {
			fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
		}
	}
	for _, pn := range sortedKeys(f.Parts) {
		part := f.Parts[pn]
		fmt.Fprintf(w, "  part %s (default %t; toggles %s): %s\n", pn, part.Default, strings.Join(part.Toggles, ", "), part.Description)
	}
}

// AllToggles is every variable that switches the feature: the generic
// PROSODY_FEATURE_… toggle first, then its own.
func (f *Feature) AllToggles() []string {
	return append([]string{GenericToggle(f.Name)}, f.Toggles...)
}

// FeatureSummary is one line of `features list`.
type FeatureSummary struct {
	Name        string   `json:"name"`
	Stability   string   `json:"stability"`
	Description string   `json:"description"`
	Toggles     []string `json:"toggles"`
}

// FeatureSummaries lists every feature of the tree, sorted by name.
func (t *Tree) FeatureSummaries() []FeatureSummary {
	var rows []FeatureSummary
	for _, n := range t.Features() {
		f := t.Feature(n)
		rows = append(rows, FeatureSummary{n, f.Stability, f.Description, f.AllToggles()})
	}
	return rows
}

// ProfileList returns every profile of the tree, sorted by name.
func (t *Tree) ProfileList() []*Profile {
	var list []*Profile
	for _, n := range t.Profiles() {
		list = append(list, t.profiles[n])
	}
	return list
}

// WriteProfileList prints one line per profile: name, number of features, description.
func (t *Tree) WriteProfileList(w io.Writer) {
	for _, p := range t.ProfileList() {
		fmt.Fprintf(w, "%-16s %2d features  %s\n", p.Name, len(p.Features), p.Description)
	}
}

// WriteFeatureList prints one line per feature: name, stability, description.
func (t *Tree) WriteFeatureList(w io.Writer) {
	for _, r := range t.FeatureSummaries() {
		fmt.Fprintf(w, "%-28s %-12s %s\n", r.Name, r.Stability, r.Description)
	}
}
