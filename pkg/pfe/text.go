package pfe

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the profile for a person: name, source, description,
// users and the features it names, one per line.
func (p *Profile) WriteText(w io.Writer) {
	fmt.Fprintf(w, "profile %s (%s)\n  %s\n  users: %s\n  features:\n", p.Name, p.Source, p.Description, string(p.Users))
	for _, f := range p.Features {
		fmt.Fprintf(w, "    %s\n", f)
	}
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
