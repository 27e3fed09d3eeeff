package luacfg_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// chain returns n tables nested in each other, alternating maps and lists, with 1 inside.
func chain(n int) any {
	var v any = int64(1)
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			v = map[string]any{"k": v}
		} else {
			v = []any{v}
		}
	}
	return v
}

// onePlan is a plan with one option x = v in the global section and in a VirtualHost.
func onePlan(v any) *pfe.Plan {
	opts := []pfe.Option{{Name: "x", Value: v, Why: []string{"test"}}}
	return &pfe.Plan{Profile: "p", Environment: "e", Domains: []string{"example.com"},
		Global: pfe.SectionPlan{Options: opts},
		Hosts:  []pfe.HostPlan{{Domain: "example.com", SectionPlan: pfe.SectionPlan{Options: opts}}}}
}

// luacAccepts runs `luac5.4 -p` on code.
func luacAccepts(t *testing.T, code []byte) error {
	t.Helper()
	luac, err := exec.LookPath("luac5.4")
	if err != nil {
		t.Fatalf("luac5.4 is needed to check rendered configs: install the Debian package lua5.4")
	}
	path := filepath.Join(t.TempDir(), "prosody.cfg.lua")
	if err := os.WriteFile(path, code, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(luac, "-p", path).CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// TestRenderDepthCap: values nested up to pfe.MaxDepth tables render to Lua that luac5.4
// accepts (in the global section and in a VirtualHost); deeper ones are refused with an
// error naming the option, at once. The old encoder rendered 300 levels into a file luac
// rejects ("C stack overflow": it accepts 196), and took seconds from 1000 levels on (2000: 13 s).
func TestRenderDepthCap(t *testing.T) {
	out, err := luacfg.Render(onePlan(chain(pfe.MaxDepth)))
	if err != nil {
		t.Fatalf("render %d levels: %v", pfe.MaxDepth, err)
	}
	if err := luacAccepts(t, out); err != nil {
		t.Errorf("luac5.4 rejects %d levels: %v", pfe.MaxDepth, err)
	}
	if lit, err := luacfg.Value(chain(pfe.MaxDepth)); err != nil {
		t.Errorf("Value of %d levels: %v", pfe.MaxDepth, err)
	} else if err := luacAccepts(t, []byte("x = "+lit+"\n")); err != nil {
		t.Errorf("luac5.4 rejects Value of %d levels: %v", pfe.MaxDepth, err)
	}

	for _, n := range []int{pfe.MaxDepth + 1, 300, 1000} {
		start := time.Now()
		_, err := luacfg.Render(onePlan(chain(n)))
		if took := time.Since(start); took > time.Second {
			t.Errorf("render of %d levels took %s", n, took)
		}
		want := "render global: option x: "
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "tables nested more than 32 deep") {
			t.Errorf("render of %d levels: err = %v; want %q ... tables nested more than 32 deep", n, err, want)
		}
		if _, err := luacfg.Value(chain(n)); err == nil {
			t.Errorf("Value of %d levels: no error", n)
		}
	}
}

// TestRenderDeepestTreeFile: the deepest value a tree file may hold renders, through the
// real pipeline, to a file luac5.4 accepts.
func TestRenderDeepestTreeFile(t *testing.T) {
	// profile (1) > global (2) > settings (3) > the value's tables (4 .. MaxDepth).
	n := pfe.MaxDepth - 3
	value := strings.Repeat(`{"a": [`, n/2) + strings.Repeat(`{"b": `, n%2) + "1" + strings.Repeat("}", n%2) + strings.Repeat("]}", n/2)
	custom := t.TempDir()
	path := filepath.Join(custom, "profiles", "deep", "profile.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	file := `{"name": "deep", "features": [], "global": {"settings": {"deep_option": ` + value + `}}}`
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := pfe.Load("../pfe/testdata/tree", custom)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tree.Plan(goldenInputs("deep", "production"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := luacfg.Render(p)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if err := luacAccepts(t, out); err != nil {
		t.Errorf("luac5.4 rejects the deepest tree value: %v", err)
	}
}

// BenchmarkRender renders one option whose value grows in nesting depth (a chain of
// tables, the pretty form indents each level one more tab, so the output grows with the
// square of the depth) or in width (a list of n small tables). MB/s is output bytes per
// second: constant when the encoder is linear in its output.
func BenchmarkRender(b *testing.B) {
	wide := func(n int) any {
		list := make([]any, n)
		for i := range list {
			list[i] = map[string]any{"jid": fmt.Sprintf("user%d@example.com", i), "limit": int64(i), "tags": []string{"a", "b"}}
		}
		return list
	}
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"depth=8", chain(8)}, {"depth=16", chain(16)}, {"depth=32", chain(32)},
		{"width=1000", wide(1000)}, {"width=10000", wide(10000)}, {"width=100000", wide(100000)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := onePlan(tc.v)
			out, err := luacfg.Render(p)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(out)))
			for b.Loop() {
				if _, err := luacfg.Render(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
