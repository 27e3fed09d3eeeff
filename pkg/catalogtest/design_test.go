package catalogtest

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// designRow is one row of testdata/design-names.json: a design name with a value, and
// what the product must make of it.
type designRow struct {
	Seed          string            `json:"seed"`
	Profile       string            `json:"profile"`
	Environment   string            `json:"environment"`
	Env           map[string]string `json:"env"`
	Refused       []string          `json:"refused"`
	FeaturesIn    []string          `json:"features_in"`
	FeaturesOut   []string          `json:"features_out"`
	ModulesIn     []string          `json:"modules_in"`
	ModulesOut    []string          `json:"modules_out"`
	ComponentsIn  []string          `json:"components_in"`
	ComponentsOut []string          `json:"components_out"`
	Options       map[string]string `json:"options"`
	OptionsOut    []string          `json:"options_out"`
	Warnings      []string          `json:"warnings"`
	Legacy        *bool             `json:"legacy"`
}

// designNames is testdata/design-names.json.
type designNames struct {
	Description string `json:"description"`
	// LuaNames are the names the seeds' Lua uses, by seed section.
	LuaNames map[string][]string `json:"lua_names"`
	Rows     []designRow         `json:"rows"`
}

func designTable(t *testing.T) designNames {
	t.Helper()
	var table designNames
	decodeStrict(t, "testdata/design-names.json", &table)
	return table
}

// docs/features.md's "Seed names" tables name every Lua name and every variable of the
// design table (a PROSODY_FEATURES_ toggle may be written by its suffix, `_AUTH_MFA`).
func TestSeedNamesDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/features.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	if i := strings.Index(doc, "## Seed names"); i < 0 {
		t.Fatal(`docs/features.md has no "## Seed names" section`)
	} else {
		doc = doc[i:]
	}
	table := designTable(t)
	for section, names := range table.LuaNames {
		for _, n := range names {
			if !strings.Contains(doc, "`"+n) {
				t.Errorf("docs/features.md does not say what Prosody 13 does with %q (seed %s)", n, section)
			}
		}
	}
	for _, r := range table.Rows {
		for name := range r.Env {
			short := "`" + strings.TrimPrefix(name, "PROSODY_FEATURES") + "`"
			if !strings.Contains(doc, name) && !strings.Contains(doc, short) {
				t.Errorf("docs/features.md does not list %s (seed %s)", name, r.Seed)
			}
		}
	}
}

// designOutcome runs a row as the entrypoint runs its environment at start: settings,
// then the plan of the shipped tree. A refusal is the text of whichever refused.
func designOutcome(t *testing.T, tree *pfe.Tree, r designRow) (*pfe.Plan, string) {
	t.Helper()
	env := map[string]string{
		"PROSODY_PROFILE": "standard", "PROSODY_ENVIRONMENT": "production", "PROSODY_DOMAIN": "example.com",
		"PROSODY_CONFIG_DIR": "/usr/share/prosody-pfe/config", "PROSODY_CUSTOM_DIR": filepath.Join(t.TempDir(), "custom"),
	}
	if r.Profile != "" {
		env["PROSODY_PROFILE"] = r.Profile
	}
	if r.Environment != "" {
		env["PROSODY_ENVIRONMENT"] = r.Environment
	}
	for k, v := range r.Env {
		env[k] = v
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	st, _, err := settings.Load(environ)
	if err != nil {
		var probs *settings.Problems
		if !errors.As(err, &probs) {
			t.Fatalf("settings.Load: %v", err)
		}
		return nil, probs.Error()
	}
	p, err := tree.Plan(initsteps.PlanInputs(st))
	if err != nil {
		return nil, err.Error()
	}
	return p, ""
}

// Every toggle and variable the design documents name does what the design meant, by
// the real Prosody mechanism, or is refused with a message that says what the design
// meant, why Prosody 13 has no such thing and what to use: never "unknown variable".
func TestDesignNames(t *testing.T) {
	table := designTable(t)
	tree := loadTree(t)
	for _, r := range table.Rows {
		var name []string
		for _, k := range slices.Sorted(maps.Keys(r.Env)) {
			name = append(name, k+"="+r.Env[k])
		}
		t.Run(strings.Join(name, ","), func(t *testing.T) {
			if r.Seed == "" {
				t.Fatal("the row does not cite its seed section")
			}
			p, refusal := designOutcome(t, tree, r)
			if strings.Contains(refusal, "unknown variable") {
				t.Errorf("%s: a design name answered with %q", r.Seed, refusal)
			}
			if len(r.Refused) > 0 {
				for _, want := range r.Refused {
					if !strings.Contains(refusal, want) {
						t.Errorf("%s: refusal %q does not say %q", r.Seed, refusal, want)
					}
				}
				return
			}
			if refusal != "" {
				t.Fatalf("%s: refused: %s", r.Seed, refusal)
			}
			checkDesignPlan(t, r, p)
		})
	}
}

func checkDesignPlan(t *testing.T, r designRow, p *pfe.Plan) {
	t.Helper()
	var features, modules, components []string
	for _, f := range p.Features {
		features = append(features, f.Name)
	}
	for _, m := range append(append([]pfe.Module(nil), p.Global.Modules...), p.Hosts[0].Modules...) {
		modules = append(modules, m.Name)
	}
	for _, c := range p.Components {
		components = append(components, c.Name)
	}
	in := func(kind string, have, want []string, on bool) {
		for _, w := range want {
			if slices.Contains(have, w) != on {
				t.Errorf("%s: %s %s: in = %t, want %t (have %v)", r.Seed, kind, w, !on, on, have)
			}
		}
	}
	in("feature", features, r.FeaturesIn, true)
	in("feature", features, r.FeaturesOut, false)
	in("module", modules, r.ModulesIn, true)
	in("module", modules, r.ModulesOut, false)
	in("component", components, r.ComponentsIn, true)
	in("component", components, r.ComponentsOut, false)
	options := map[string]any{}
	for _, o := range append(append([]pfe.Option(nil), p.Global.Options...), p.Hosts[0].Options...) {
		options[o.Name] = o.Value
	}
	for name, want := range r.Options {
		v, ok := options[name]
		if !ok {
			t.Errorf("%s: option %s is not rendered; want %s", r.Seed, name, want)
			continue
		}
		got, err := luacfg.Value(v)
		if err != nil || got != want {
			t.Errorf("%s: option %s = %s (%v); want %s", r.Seed, name, got, err, want)
		}
	}
	for _, name := range r.OptionsOut {
		if v, ok := options[name]; ok {
			t.Errorf("%s: option %s is rendered (%v); want it left out", r.Seed, name, v)
		}
	}
	for _, w := range r.Warnings {
		if !slices.ContainsFunc(p.Warnings, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("%s: no warning says %q; warnings: %q", r.Seed, w, p.Warnings)
		}
	}
	if r.Legacy != nil && (len(p.Legacy) > 0) != *r.Legacy {
		t.Errorf("%s: legacy files included = %t, want %t", r.Seed, len(p.Legacy) > 0, *r.Legacy)
	}
}
