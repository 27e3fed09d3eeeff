package luacfg_test

import (
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// BenchmarkReloadRender is the pure part of every reload: the tree read again
// from disk (a reload re-reads everything), then plan and render, per profile.
// BenchmarkPlanRender is the same without the reading; the difference is the
// cost of loading and validating the tree.
func BenchmarkReloadRender(b *testing.B) {
	tree, err := pfe.Load(realTree, "")
	if err != nil {
		b.Fatalf("load %s: %v", realTree, err)
	}
	for _, prof := range tree.Profiles() {
		b.Run(prof, func(b *testing.B) {
			in := goldenInputs(prof, "production")
			for b.Loop() {
				t, err := pfe.Load(realTree, "")
				if err != nil {
					b.Fatal(err)
				}
				p, err := t.Plan(in)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := luacfg.Render(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
