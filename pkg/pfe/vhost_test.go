package pfe_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// treeWithVHostTemplate copies testdata/tree into a temporary built-in tree and writes
// body as its templates/vhost.json (no file when body is "").
func treeWithVHostTemplate(t *testing.T, body string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.CopyFS(dir, os.DirFS("testdata/tree")); err != nil {
		t.Fatal(err)
	}
	if body != "" {
		writeFile(t, filepath.Join(dir, "templates", pfe.VHostTemplateFile), body)
	}
	return dir
}

// The template's host section is where every VirtualHost starts, for every domain: its
// modules and options are in each host, said to come from "template vhost", and the
// profile and environment, applied later, override it.
func TestVHostTemplateIsEveryVirtualHostsStart(t *testing.T) {
	dir := treeWithVHostTemplate(t, `{
  "description": "test vhost defaults",
  "host": {
    "modules": ["server_contact_info"],
    "settings": { "contact_info": { "support": ["mailto:support@example.net"] }, "c2s_require_encryption": false }
  },
  "when": [ { "if": { "environment": "development" }, "host": { "modules": ["motd"], "settings": { "motd_text": "test server" } } } ]
}`)
	tree, err := pfe.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := tree.Plan(baseInputs("small", "development"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) != 2 {
		t.Fatalf("hosts = %d, want one per domain (2)", len(p.Hosts))
	}
	for _, h := range p.Hosts {
		for _, m := range []string{"server_contact_info", "motd"} {
			if !has(moduleNames(h.SectionPlan), m) {
				t.Errorf("VirtualHost %s lacks %s from the template: %v", h.Domain, m, moduleNames(h.SectionPlan))
			}
		}
		ci, ok := option(h.SectionPlan, "contact_info")
		if !ok || ci.Why[0] != pfe.VHostTemplateLabel {
			t.Errorf("VirtualHost %s: contact_info = %+v, want it from %q", h.Domain, ci, pfe.VHostTemplateLabel)
		}
		motd, _ := option(h.SectionPlan, "motd_text")
		if motd.Value != "test server" || !strings.HasPrefix(motd.Why[0], pfe.VHostTemplateLabel+" (when environment=development)") {
			t.Errorf("VirtualHost %s: motd_text = %+v, want the template's when block", h.Domain, motd)
		}
		// The profile (small) sets c2s_require_encryption in its host section after the template.
		enc, _ := option(h.SectionPlan, "c2s_require_encryption")
		if enc.Value != true || !slices.Equal(enc.Why, []string{pfe.VHostTemplateLabel, "profile small"}) {
			t.Errorf("VirtualHost %s: c2s_require_encryption = %+v, want the profile's true over the template's false", h.Domain, enc)
		}
	}
	for _, ex := range tree.Explain(p, "contact_info") {
		if ex.Section != "host" || !ex.In || !slices.Contains(ex.Why, pfe.VHostTemplateLabel) {
			t.Errorf("explain contact_info = %+v, want it in the host section because of %q", ex, pfe.VHostTemplateLabel)
		}
	}
	if ex := tree.Explain(p, "contact_info"); len(ex) != 1 {
		t.Errorf("explain contact_info = %+v, want one entry", ex)
	}
	// Not in the global section: the template is about VirtualHosts only.
	if _, ok := option(p.Global, "contact_info"); ok {
		t.Errorf("contact_info leaked into the global section")
	}
	// Production: the when block is out, the rest stays.
	prod, err := tree.Plan(baseInputs("small", "production"))
	if err != nil {
		t.Fatal(err)
	}
	if mods := moduleNames(prod.Hosts[1].SectionPlan); has(mods, "motd") || !has(mods, "server_contact_info") {
		t.Errorf("production VirtualHost modules = %v, want server_contact_info without the development-only motd", mods)
	}
}

// A custom directory's templates/vhost.json replaces the built-in one whole, and the plan
// says so; a tree without any template plans as before.
func TestCustomVHostTemplateReplacesBuiltin(t *testing.T) {
	dir := treeWithVHostTemplate(t, `{"host": {"modules": ["motd"]}}`)
	custom := t.TempDir()
	writeFile(t, filepath.Join(custom, "templates", pfe.VHostTemplateFile), `{"host": {"modules": ["server_contact_info"]}}`)
	tree, err := pfe.Load(dir, custom)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tree.Plan(baseInputs("small", "production"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range p.Hosts {
		if mods := moduleNames(h.SectionPlan); !has(mods, "server_contact_info") || has(mods, "motd") {
			t.Errorf("VirtualHost %s modules = %v, want the custom template's only", h.Domain, mods)
		}
	}
	want := pfe.Shadow{Kind: "template", Name: "vhost", Builtin: filepath.Join(dir, "templates", "vhost.json"), Custom: filepath.Join(custom, "templates", "vhost.json")}
	if !slices.Contains(p.Shadowed, want) {
		t.Errorf("shadowed = %+v, want %+v", p.Shadowed, want)
	}

	// Without a built-in template, a custom one still applies (nothing is shadowed).
	bare := treeWithVHostTemplate(t, "")
	tree, err = pfe.Load(bare, custom)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = tree.Plan(baseInputs("small", "production")); err != nil {
		t.Fatal(err)
	}
	if mods := moduleNames(p.Hosts[0].SectionPlan); !has(mods, "server_contact_info") || len(p.Shadowed) != 0 {
		t.Errorf("custom template without a built-in one: modules %v, shadowed %+v", mods, p.Shadowed)
	}
}

// The template holds host sections only, and it is the only place host defaults live:
// each misplaced section is refused with the file, the key and where it belongs.
func TestVHostTemplateRefusesOtherSections(t *testing.T) {
	for _, tc := range []struct {
		name, template, core string
		want                 []string
	}{
		{name: "global at the top", template: `{"global": {"modules": ["motd"]}}`,
			want: []string{"vhost.json", `unknown field "global"`}},
		{name: "global in a when block", template: `{"when": [{"if": {"environment": "production"}, "global": {"modules": ["motd"]}}]}`,
			want: []string{"vhost.json", `key "when[0].global"`, "host sections only"}},
		{name: "component in a when block", template: `{"when": [{"if": {"environment": "production"}, "components": {"x": {"type": "muc", "subdomain": "x"}}}]}`,
			want: []string{"vhost.json", `key "when[0].components"`, "features create NAME --component TYPE"}},
		{name: "bad module name", template: `{"host": {"modules": ["mod_motd"]}}`,
			want: []string{"vhost.json", `key "host.modules"`, "without the mod_ prefix"}},
		{name: "host section in a core file", core: `{"host": {"modules": ["motd"]}}`,
			want: []string{filepath.Join("core", "extra.json"), `key "host"`, "templates/vhost.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := treeWithVHostTemplate(t, tc.template)
			if tc.core != "" {
				writeFile(t, filepath.Join(dir, "core", "extra.json"), tc.core)
			}
			_, err := pfe.Load(dir, "")
			if err == nil {
				t.Fatal("loaded, want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// The shipped tree has its template, and a custom one works with it (the operator's path:
// PROSODY_CUSTOM_DIR/templates/vhost.json).
func TestRealTreeVHostTemplate(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", "..", "config", "templates", pfe.VHostTemplateFile)); err != nil {
		t.Fatalf("the shipped tree has no VirtualHost template: %v", err)
	}
	custom := t.TempDir()
	writeFile(t, filepath.Join(custom, "templates", pfe.VHostTemplateFile),
		`{"host": {"settings": {"contact_info": {"support": ["mailto:support@example.net"]}}}}`)
	tree, err := pfe.Load(filepath.Join("..", "..", "config"), custom)
	if err != nil {
		t.Fatal(err)
	}
	in := baseInputs("standard", "production")
	in.HTTPPort, in.HTTPSPort = 5280, 5281
	p, err := tree.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range p.Hosts {
		if o, ok := option(h.SectionPlan, "contact_info"); !ok || !slices.Equal(o.Why, []string{pfe.VHostTemplateLabel}) {
			t.Errorf("VirtualHost %s: contact_info = %+v, want it from the custom template", h.Domain, o)
		}
	}
}
