package luacfg_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// realTree is the product's config tree, relative to this package.
const realTree = "../../config"

func needProsodyctl(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("prosodyctl"); err != nil {
		t.Fatalf("prosodyctl is needed to check rendered configs: install the Debian package prosody (13, from bookworm-backports)")
	}
	if _, err := exec.LookPath("luac5.4"); err != nil {
		t.Fatalf("luac5.4 is needed to check rendered configs: install the Debian package lua5.4")
	}
}

func goldenInputs(profile, env string) pfe.Inputs {
	return pfe.Inputs{
		Profile: profile, Environment: env, Domains: []string{"example.com", "example.org"},
		Admins: []string{"admin@example.com"}, Storage: "sqlite", C2SPort: 5222, S2SPort: 5269,
		HTTPPort: 5280, HTTPSPort: 5281, UploadSizeLimit: 10 << 20, FastTokenTTL: 21 * 24 * time.Hour,
		TLSProfile: "intermediate", DataDir: "/var/lib/prosody", RuntimeDir: "/run/prosody",
		CertsDir: "/etc/prosody/certs", ConfigDir: "/usr/share/prosody-pfe/config",
	}
}

// renderChecked renders in, compares with the golden file, and runs luac and prosodyctl on it.
func renderChecked(t *testing.T, tree *pfe.Tree, in pfe.Inputs, golden string) {
	t.Helper()
	p, err := tree.Plan(in)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	got, err := luacfg.Render(p)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	again, _ := luacfg.Render(p)
	if !bytes.Equal(got, again) {
		t.Fatalf("two renders of one plan differ")
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run go test -run %s -update to create it): %v", t.Name(), err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered config differs from %s (run with -update after checking the change):\n%s", golden, lineDiff(string(want), string(got)))
	}
	path := filepath.Join(t.TempDir(), "prosody.cfg.lua")
	if err := os.WriteFile(path, got, 0o644); err != nil {
		t.Fatal(err)
	}
	warnings, err := luacfg.Check(context.Background(), path, luacfg.CheckOptions{})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("prosodyctl check config warns about %s:\n%s", golden, strings.Join(warnings, "\n"))
	}
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
		}
		if len(out) > 40 {
			break
		}
	}
	return strings.Join(out, "\n")
}

func TestRenderTestTreeGolden(t *testing.T) {
	needProsodyctl(t)
	tree, err := pfe.Load("../pfe/testdata/tree", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, prof := range tree.Profiles() {
		for _, env := range tree.Environments() {
			t.Run(prof+"-"+env, func(t *testing.T) {
				renderChecked(t, tree, goldenInputs(prof, env), filepath.Join("testdata/golden", prof+"-"+env+".cfg.lua"))
			})
		}
	}
	t.Run("postgres-legacy-toggles", func(t *testing.T) {
		in := goldenInputs("full", "production")
		in.Storage, in.DBHost, in.DBPort, in.DBName, in.DBUser = "postgres", "db.internal", 5432, "prosody", "prosody"
		in.Legacy = true
		in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH_EXTENSIONS": "true"}
		in.Domains = []string{"bücher.example"} // non-ASCII goes through \ddd escapes
		renderChecked(t, tree, in, "testdata/golden/full-production-postgres-legacy.cfg.lua")
	})
}

func TestRenderRealTree(t *testing.T) {
	needProsodyctl(t)
	tree, err := pfe.Load(realTree, filepath.Join(realTree, "custom"))
	if err != nil {
		t.Fatalf("the product's config tree does not load: %v", err)
	}
	if len(tree.Profiles()) == 0 || len(tree.Environments()) == 0 {
		t.Fatalf("the product's config tree has no profiles or environments")
	}
	for _, prof := range tree.Profiles() {
		for _, env := range tree.Environments() {
			t.Run(prof+"-"+env, func(t *testing.T) {
				renderChecked(t, tree, goldenInputs(prof, env), filepath.Join("testdata/golden/real", prof+"-"+env+".cfg.lua"))
			})
		}
	}
	// Behind a proxy: every option of Prosody's HTTP side set, and accepted by prosodyctl.
	t.Run("development-production-proxy", func(t *testing.T) {
		in := goldenInputs("development", "production")
		in.HTTPInterfaces, in.HTTPSInterfaces = []string{"*", "::"}, []string{"127.0.0.1"}
		in.TrustedProxies = []string{"10.0.0.0/8", "fd00::1"}
		in.HTTPExternalURL, in.UploadExternalURL = "https://xmpp.example.com/", "https://upload.example.com/"
		in.ConsiderWebsocketSecure, in.ConsiderBoshSecure = true, true
		in.OpenmetricsAllowIPs, in.OpenmetricsAllowCIDR = []string{"10.0.0.9"}, "10.1.0.0/16"
		renderChecked(t, tree, in, "testdata/golden/real/development-production-proxy.cfg.lua")
	})
	// An operator's VirtualHost template (PROSODY_CUSTOM_DIR/templates/vhost.json): both
	// domains get its module and options in their own VirtualHost, accepted by prosodyctl.
	t.Run("standard-production-vhost-template", func(t *testing.T) {
		tree, err := pfe.Load(realTree, "testdata/vhost-custom")
		if err != nil {
			t.Fatal(err)
		}
		renderChecked(t, tree, goldenInputs("standard", "production"), "testdata/golden/real/standard-production-vhost-template.cfg.lua")
	})
}

func TestRenderRefusesRawLuaWithoutSource(t *testing.T) {
	p := &pfe.Plan{Profile: "x", Environment: "y", Domains: []string{"d"},
		Global: pfe.SectionPlan{Options: []pfe.Option{{Name: "x", Value: pfe.LuaCode{Code: "os.exit(1)"}}}}}
	if _, err := luacfg.Render(p); err == nil || !strings.Contains(err.Error(), "option x: raw Lua without a source file is refused") {
		t.Errorf("err = %v", err)
	}
	p.Global.Options = []pfe.Option{{Name: "not-ident", Value: "x"}}
	if _, err := luacfg.Render(p); err == nil || !strings.Contains(err.Error(), "not a Lua identifier") {
		t.Errorf("err = %v", err)
	}
}

func TestRenderHostileInputsStayLiterals(t *testing.T) {
	tree, err := pfe.Load("../pfe/testdata/tree", "")
	if err != nil {
		t.Fatal(err)
	}
	in := goldenInputs("small", "production")
	in.Admins = []string{"a\"); os.exit(1) --", "]] x [[", "line\nbreak"}
	in.DataDir = "/tmp/\x00\xff"
	p, err := tree.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := luacfg.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	// Load the file in Lua with the config functions stubbed, and read the values back.
	script := `local cfg = {}
local env = setmetatable({ VirtualHost = function() end, Component = function() return function() end end,
  Credential = function(n) return n end }, { __newindex = function(_, k, v) cfg[k] = cfg[k] or v end })
assert(load(io.read("a"), "cfg", "t", env))()
io.write(cfg.admins[1], "|", cfg.admins[2], "|", cfg.admins[3], "|", cfg.data_path)`
	cmd := exec.Command(needLua(t), "-e", script)
	cmd.Stdin = bytes.NewReader(out)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lua: %v: %s", err, got)
	}
	if want := strings.Join(in.Admins, "|") + "|" + in.DataDir; string(got) != want {
		t.Errorf("lua read %q, want %q", got, want)
	}
}

func BenchmarkPlanRender(b *testing.B) {
	tree, err := pfe.Load(realTree, "")
	if err != nil {
		b.Fatalf("load %s: %v", realTree, err)
	}
	for _, prof := range tree.Profiles() {
		b.Run(prof, func(b *testing.B) {
			in := goldenInputs(prof, "production")
			for b.Loop() {
				p, err := tree.Plan(in)
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
