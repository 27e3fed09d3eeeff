package catalogtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// repoConfig is the shipped tree, relative to this package.
const repoConfig = "../../config"

// issueFeatures are the features the catalog must offer (issue #5), in eight groups.
var issueFeatures = []string{
	"authentication/basic", "authentication/modern", "authentication/external", "authentication/mfa",
	"messaging/core", "messaging/archive", "messaging/carbons", "messaging/encryption",
	"collaboration/muc", "collaboration/pubsub", "collaboration/sharing", "collaboration/bookmarks",
	"web/http", "web/websocket", "web/upload", "web/admin",
	"mobile/push", "mobile/csi", "mobile/battery", "mobile/offline",
	"security/firewall", "security/antispam", "security/monitoring", "security/compliance",
	"performance/caching", "performance/clustering", "performance/optimization",
	"admin/shell", "admin/api", "admin/monitoring", "admin/backup",
}

// moduleDir is where Prosody's modules are installed; it must exist (no skip).
func moduleDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PROSODY_MODULES_DIR")
	if dir == "" {
		dir = pfe.DebianModuleDir
	}
	if _, err := os.Stat(filepath.Join(dir, "mod_saslauth.lua")); err != nil {
		t.Fatalf("prosody modules not found in %s (%v): install the Debian packages prosody (13) and prosody-modules, or set PROSODY_MODULES_DIR", dir, err)
	}
	return dir
}

// moduleExists follows Prosody's plugin loader: mod_<name>.lua, mod_<name>/mod_<name>.lua
// mod_<name>/<name>/mod_<name>.lua or <name>/mod_<name>.lua (core muc).
func moduleExists(dir, name string) bool {
	for _, p := range []string{
		filepath.Join(dir, "mod_"+name+".lua"),
		filepath.Join(dir, "mod_"+name, "mod_"+name+".lua"),
		filepath.Join(dir, "mod_"+name, name, "mod_"+name+".lua"),
		filepath.Join(dir, name, "mod_"+name+".lua"),
	} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

func loadTree(t *testing.T) *pfe.Tree {
	t.Helper()
	tree, err := pfe.Load(repoConfig, "")
	if err != nil {
		t.Fatalf("load the shipped catalog: %v", err)
	}
	return tree
}

// layers returns every layer of the tree with a label, and the community modules allowed in it.
func layers(t *testing.T, tree *pfe.Tree) map[string]struct {
	layer     *pfe.Layer
	community []string
} {
	t.Helper()
	out := map[string]struct {
		layer     *pfe.Layer
		community []string
	}{}
	for _, name := range []string{"global", "security", "database"} {
		var c pfe.Core
		decodeStrict(t, filepath.Join(repoConfig, "core", name+".json"), &c)
		out["core/"+name] = struct {
			layer     *pfe.Layer
			community []string
		}{&c.Layer, nil}
	}
	// The VirtualHost template's names are checked like every layer's.
	var vhost pfe.VHostTemplate
	decodeStrict(t, filepath.Join(repoConfig, "templates", pfe.VHostTemplateFile), &vhost)
	out[pfe.VHostTemplateLabel] = struct {
		layer     *pfe.Layer
		community []string
	}{&pfe.Layer{Host: vhost.Host, When: vhost.When}, nil}
	for _, n := range tree.Profiles() {
		out["profile "+n] = struct {
			layer     *pfe.Layer
			community []string
		}{&tree.Profile(n).Layer, nil}
	}
	for _, n := range tree.Environments() {
		out["environment "+n] = struct {
			layer     *pfe.Layer
			community []string
		}{&tree.Environment(n).Layer, nil}
	}
	for _, n := range tree.Features() {
		f := tree.Feature(n)
		out["feature "+n] = struct {
			layer     *pfe.Layer
			community []string
		}{&f.Layer, f.CommunityModules}
		for pn, p := range f.Parts {
			out["feature "+n+" part "+pn] = struct {
				layer     *pfe.Layer
				community []string
			}{&p.Layer, f.CommunityModules}
		}
	}
	return out
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s strictly: %v", path, err)
	}
}

// modulesOf lists every module a layer names (enabled, removed, disabled, component types).
func modulesOf(l *pfe.Layer) []string {
	var out []string
	sec := func(s *pfe.Section) {
		if s != nil {
			out = append(out, s.Modules...)
			out = append(out, s.RemoveModules...)
			out = append(out, s.DisableModules...)
		}
	}
	var walk func(l *pfe.Layer)
	walk = func(l *pfe.Layer) {
		sec(l.Global)
		sec(l.Host)
		for _, c := range l.Components {
			out = append(out, c.Type)
			out = append(out, c.Modules...)
		}
		for i := range l.When {
			walk(&l.When[i].Layer)
		}
	}
	walk(l)
	return out
}

// settingsOf lists every option name a layer sets.
func settingsOf(l *pfe.Layer) []string {
	var out []string
	var walk func(l *pfe.Layer)
	walk = func(l *pfe.Layer) {
		for _, s := range []*pfe.Section{l.Global, l.Host} {
			if s != nil {
				for k := range s.Settings {
					out = append(out, k)
				}
			}
		}
		for _, c := range l.Components {
			for k := range c.Settings {
				out = append(out, k)
			}
		}
		for i := range l.When {
			walk(&l.When[i].Layer)
		}
	}
	walk(l)
	return out
}

func TestCatalogHasEveryFeatureOfTheIssue(t *testing.T) {
	tree := loadTree(t)
	if got := tree.Features(); !slices.Equal(got, slices.Sorted(slices.Values(issueFeatures))) {
		t.Errorf("features in config/features:\n got %v\nwant %v", got, slices.Sorted(slices.Values(issueFeatures)))
	}
	for _, want := range []string{"minimal", "standard", "enterprise", "development"} {
		if tree.Profile(want) == nil {
			t.Errorf("profile %q is missing from config/profiles", want)
		}
	}
	for _, want := range []string{"development", "staging", "production", "testing"} {
		if tree.Environment(want) == nil {
			t.Errorf("environment %q is missing from config/environments", want)
		}
	}
}

func TestFeatureMetadata(t *testing.T) {
	tree := loadTree(t)
	dir := moduleDir(t)
	xep := regexp.MustCompile(`^XEP-\d{4}$`)
	toggle := regexp.MustCompile(`^PROSODY_FEATURES_[A-Z0-9_]+$`)
	owner := map[string]string{}
	for _, n := range tree.Features() {
		f := tree.Feature(n)
		if f.Description == "" || len(f.Notes) == 0 {
			t.Errorf("%s: description and notes are required: they are the documentation of a JSON file", n)
		}
		for _, x := range f.XEPs {
			if !xep.MatchString(x) {
				t.Errorf("%s: xep %q is not of the form XEP-NNNN", n, x)
			}
		}
		// A feature toggle may switch several features (the design's WEB_ENABLED is
		// web/http and web/websocket); a part toggle switches exactly one part.
		type claim struct{ what, kind string }
		var toggles []claim
		for _, tg := range f.Toggles {
			toggles = append(toggles, claim{tg, "feature"})
		}
		for pn, p := range f.Parts {
			for _, tg := range p.Toggles {
				toggles = append(toggles, claim{tg, "part " + pn})
			}
		}
		for _, c := range toggles {
			tg := c.what
			if !toggle.MatchString(tg) {
				t.Errorf("%s: toggle %q is not a PROSODY_FEATURES_* name", n, tg)
			}
			if o, dup := owner[tg]; dup && (c.kind != "feature" || !strings.HasSuffix(o, " feature")) {
				t.Errorf("toggle %s is claimed by both %s and %s %s", tg, o, n, c.kind)
			}
			owner[tg] = n + " " + c.kind
		}
		if f.Stability == "unsupported" {
			if f.Global != nil || f.Host != nil || len(f.Components) > 0 || len(f.When) > 0 || len(f.Parts) > 0 {
				t.Errorf("%s is unsupported but adds modules or settings", n)
			}
		} else if len(f.Packages) == 0 {
			t.Errorf("%s: packages must name the Debian packages it needs", n)
		}
		for _, m := range f.CommunityModules {
			if moduleExists(dir, m) {
				t.Errorf("%s: community module %q is installed by Debian in %s: it is not community-only", n, m, dir)
			}
			if !strings.Contains(strings.Join(f.Notes, " "), "PROSODY_PLUGIN_DIR") {
				t.Errorf("%s: lists community modules but its notes do not say how to add them (PROSODY_PLUGIN_DIR)", n)
			}
		}
	}
}

// TestEveryModuleExists is the promise that no feature names a module that Prosody 13 and
// Debian's prosody-modules do not have (a missing module only logs an error in Prosody).
func TestEveryModuleExists(t *testing.T) {
	tree := loadTree(t)
	dir := moduleDir(t)
	for label, l := range layers(t, tree) {
		for _, m := range modulesOf(l.layer) {
			if !moduleExists(dir, m) && !slices.Contains(l.community, m) {
				t.Errorf("%s names module %q, which is not in %s and not in its community_modules", label, m, dir)
			}
		}
	}
	quoted := regexp.MustCompile(`"([a-z0-9_]+)"`)
	files, _ := filepath.Glob(filepath.Join(repoConfig, "legacy", "modules.d", "*.cfg.lua"))
	if len(files) == 0 {
		t.Fatal("no legacy/modules.d/*.cfg.lua examples")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range quoted.FindAllStringSubmatch(string(data), -1) {
			if !moduleExists(dir, m[1]) {
				t.Errorf("%s loads module %q, which is not in %s", f, m[1], dir)
			}
		}
	}
}

func TestLegacyFeatureMap(t *testing.T) {
	tree := loadTree(t)
	dir := moduleDir(t)
	var m struct {
		Description string             `json:"description"`
		Notes       string             `json:"notes"`
		Modules     map[string]*string `json:"modules"`
	}
	decodeStrict(t, filepath.Join(repoConfig, "legacy", "modules.d", "feature-map.json"), &m)
	for mod, feat := range m.Modules {
		if !moduleExists(dir, mod) && !strings.HasPrefix(mod, "auth_") {
			t.Errorf("feature-map.json: module %q is not in %s", mod, dir)
		}
		if feat != nil && tree.Feature(*feat) == nil {
			t.Errorf("feature-map.json: module %q maps to unknown feature %q", mod, *feat)
		}
	}
	// Every module a feature enables maps back to a feature.
	for _, n := range tree.Features() {
		for _, mod := range modulesOf(&tree.Feature(n).Layer) {
			if _, ok := m.Modules[mod]; !ok {
				t.Errorf("feature-map.json has no entry for %q (used by %s)", mod, n)
			}
		}
	}
}

// netService finds the name of a network service in module:provides("net", { name = ...
var netService = regexp.MustCompile(`provides\("net",\s*\{\s*name\s*=\s*"([a-z0-9_]+)"`)

// TestSettingNamesAreRead catches invented options: every option the catalog sets must be
// read somewhere in Prosody's Lua sources (the installed tree) as a quoted name.
func TestSettingNamesAreRead(t *testing.T) {
	tree := loadTree(t)
	root := filepath.Dir(moduleDir(t))
	var src strings.Builder
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".lua") {
			return err
		}
		b, err := os.ReadFile(p)
		src.Write(b)
		return err
	})
	if err != nil {
		t.Fatalf("read prosody sources under %s: %v", root, err)
	}
	all := src.String()
	// Listener options (http_interfaces, c2s_direct_tls_ports) are read by portmanager as
	// config_prefix.."interfaces" and .."ports", where the prefix is the name of a network
	// service a module provides: module:provides("net", { name = "https"; ... }).
	services := map[string]bool{}
	for _, m := range netService.FindAllStringSubmatch(all, -1) {
		services[m[1]] = true
	}
	listener := func(k string) bool {
		for _, opt := range []string{"interfaces", "ports"} {
			if svc, ok := strings.CutSuffix(k, "_"+opt); ok && services[svc] && strings.Contains(all, `config_prefix.."`+opt+`"`) {
				return true
			}
		}
		return false
	}
	for label, l := range layers(t, tree) {
		for _, k := range settingsOf(l.layer) {
			// Options like http_file_share_size_limit are read as module.name.."_size_limit".
			suffix := k[strings.Index(k, "_")+1:]
			if !strings.Contains(all, `"`+k+`"`) && !listener(k) && !(strings.HasPrefix(k, "http_file_share_") &&
				strings.Contains(all, `"_`+strings.TrimPrefix(k, "http_file_share_")+`"`)) {
				t.Errorf("%s sets option %q, which no Prosody module reads (suffix %q)", label, k, suffix)
			}
		}
	}
}

func inputs(profile, env, storage string) pfe.Inputs {
	return pfe.Inputs{
		Profile: profile, Environment: env, Domains: []string{"example.test"},
		Admins: []string{"admin@example.test"}, Storage: storage,
		DBHost: "127.0.0.1", DBPort: 5432, DBName: "prosody", DBUser: "prosody",
		C2SPort: 5222, S2SPort: 5269, HTTPPort: 5280, HTTPSPort: 5281,
		UploadSizeLimit: 10 << 20, FastTokenTTL: 21 * 24 * time.Hour, TLSProfile: "intermediate",
		DataDir: "/var/lib/prosody", RuntimeDir: "/run/prosody", CertsDir: "/etc/prosody/certs",
	}
}

// TestEveryPlanResolves plans every profile × environment × storage with the engine and checks
// that every module of the plan is installed.
func TestEveryPlanResolves(t *testing.T) {
	tree := loadTree(t)
	dir := moduleDir(t)
	for _, prof := range tree.Profiles() {
		for _, env := range tree.Environments() {
			for _, storage := range []string{"internal", "sqlite", "postgres"} {
				p, err := tree.Plan(inputs(prof, env, storage))
				if err != nil {
					t.Errorf("plan %s × %s × %s: %v", prof, env, storage, err)
					continue
				}
				for _, m := range pfe.MissingModules(p, []string{dir}) {
					t.Errorf("plan %s × %s × %s: module %s (feature %s) is not installed", prof, env, storage, m.Module, m.Feature)
				}
			}
		}
	}
}

func TestUnsupportedFeaturesRefuseToEnable(t *testing.T) {
	tree := loadTree(t)
	for _, n := range tree.Features() {
		f := tree.Feature(n)
		if f.Stability != "unsupported" {
			continue
		}
		in := inputs("minimal", "production", "sqlite")
		in.FeatureList = "+" + n
		_, err := tree.Plan(in)
		if err == nil || !strings.Contains(err.Error(), f.Unsupported.Instead) {
			t.Errorf("enabling %s: got error %v, want one that says what to do instead", n, err)
		}
	}
}

func planFeatures(t *testing.T, tree *pfe.Tree, in pfe.Inputs) []string {
	t.Helper()
	p, err := tree.Plan(in)
	if err != nil {
		t.Fatalf("plan %s × %s: %v", in.Profile, in.Environment, err)
	}
	var out []string
	for _, f := range p.Features {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

func TestProfilesDeclareTheirFeatures(t *testing.T) {
	tree := loadTree(t)
	standard := []string{"admin/shell", "authentication/basic", "authentication/modern",
		"collaboration/bookmarks", "collaboration/muc", "messaging/archive", "messaging/carbons",
		"messaging/core", "mobile/csi", "mobile/push", "security/antispam", "security/firewall",
		"web/http", "web/upload", "web/websocket"}
	if got := planFeatures(t, tree, inputs("standard", "production", "sqlite")); !slices.Equal(got, standard) {
		t.Errorf("standard profile features:\n got %v\nwant %v", got, standard)
	}
	if got := planFeatures(t, tree, inputs("minimal", "production", "sqlite")); !slices.Equal(got, []string{"authentication/basic", "messaging/core"}) {
		t.Errorf("minimal profile features: got %v", got)
	}
	// enterprise: every supported feature except authentication/external, which needs the
	// site's directory settings.
	var supported []string
	for _, n := range tree.Features() {
		if tree.Feature(n).Stability != "unsupported" && n != "authentication/external" {
			supported = append(supported, n)
		}
	}
	if got := planFeatures(t, tree, inputs("enterprise", "production", "postgres")); !slices.Equal(got, supported) {
		t.Errorf("enterprise profile features:\n got %v\nwant %v", got, supported)
	}
}
