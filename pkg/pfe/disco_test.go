package pfe_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// A feature's "disco" names only its own components and real namespace tokens;
// the plan carries the feature's namespaces plus those of its enabled parts only.
func TestDiscoIsValidatedAndMergedWithParts(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "features/x/bad.json"), `{"name": "x/bad", "disco": {"server": ["has space"], "components": {"muc": ["a"]}}}`)
	_, err := pfe.Load(dir, filepath.Join(dir, "missing-custom"))
	if err == nil {
		t.Fatal("Load accepted a bad disco key")
	}
	for _, want := range []string{
		`features/x/bad.json: key "disco.server": "has space" is not a namespace`,
		`features/x/bad.json: key "disco.components": component "muc" is not one this feature adds`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, "core/global.json"), `{}`)
	writeFile(t, filepath.Join(dir, "environments/e.json"), `{"name": "e"}`)
	writeFile(t, filepath.Join(dir, "profiles/p/profile.json"), `{"name": "p", "features": ["x/one"]}`)
	writeFile(t, filepath.Join(dir, "features/x/one.json"), `{"name": "x/one",
		"disco": {"server": ["urn:a"], "components": {"c": ["urn:c"]}},
		"components": {"c": {"type": "muc", "subdomain": "c"}},
		"parts": {
			"on": {"default": true, "disco": {"server": ["urn:a", "urn:on"], "stream": ["urn:s"]}},
			"off": {"default": false, "disco": {"account": ["urn:off"]}}
		}}`)
	tree, err := pfe.Load(dir, filepath.Join(dir, "missing-custom"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := tree.Plan(pfe.Inputs{Profile: "p", Environment: "e", Domains: []string{"example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Features[0].Disco
	if d == nil || !slices.Equal(d.Server, []string{"urn:a", "urn:on"}) || !slices.Equal(d.Stream, []string{"urn:s"}) ||
		len(d.Account) != 0 || !slices.Equal(d.Components["c"], []string{"urn:c"}) {
		t.Errorf("planned disco = %+v, want the feature's and the enabled part's namespaces, once each", d)
	}
	exp := p.ExpectedModules()
	if len(exp) != 2 || exp[1].Host != "c.example.org" || exp[1].Component != "c" || exp[1].Modules[0].Name != "muc" {
		t.Errorf("ExpectedModules = %+v, want the VirtualHost then the component with its type module", exp)
	}
}
