package pfe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Tree is a loaded, validated configuration tree. It is read-only after Load and safe for
// concurrent use.
type Tree struct {
	builtinDir   string
	customDir    string
	core         []coreLayer
	vhost        *coreLayer // templates/vhost.json (custom over built-in); nil when neither exists
	profiles     map[string]*Profile
	features     map[string]*Feature
	environments map[string]*Environment
	legacy       []LegacyFile
	shadowed     []Shadow
}

type coreLayer struct {
	name   string // "core/global", "template vhost"
	source string
	layer  Layer
}

// LegacyFile is one legacy/modules.d/*.cfg.lua file, included verbatim in legacy mode.
type LegacyFile struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Code   string `json:"-"`
}

// Shadow records a custom profile or feature that replaces a built-in one of the same name.
type Shadow struct {
	Kind    string `json:"kind"` // "profile" or "feature"
	Name    string `json:"name"`
	Builtin string `json:"builtin"`
	Custom  string `json:"custom"`
}

// Load reads the built-in tree at builtinDir and the user's custom tree at customDir (which
// may be empty or missing; its profiles and features shadow built-ins of the same name).
// Every file is read without blocking and must be a regular file of at most MaxFileBytes
// (a FIFO, device or directory in its place is an error, at once); profile, feature, core,
// environment and legacy file names follow CheckName. Every JSON file is decoded strictly
// (see decodeStrict: no duplicate or wrongly cased key, nesting at most MaxDepth, integers
// within ±MaxExactInt). All problems are collected: the error lists each with the file and
// key it concerns. Names and values from the files are quoted in the messages.
func Load(builtinDir, customDir string) (*Tree, error) {
	t := &Tree{
		builtinDir:   builtinDir,
		customDir:    customDir,
		profiles:     map[string]*Profile{},
		features:     map[string]*Feature{},
		environments: map[string]*Environment{},
	}
	var errs []error
	for _, dir := range []string{builtinDir, customDir} {
		if !Printable(dir) {
			return nil, fmt.Errorf("load config tree: directory %s has a control character or is not UTF-8: name a directory without them", strconv.Quote(dir))
		}
	}
	if st, err := os.Stat(builtinDir); err != nil {
		return nil, fmt.Errorf("load config tree %s: %w", builtinDir, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("load config tree %s: not a directory", builtinDir)
	}
	// The built-in features (most of the files) are read beside the other
	// built-in files: each part fills fields of t the other does not touch
	// (the built-in pass records no shadowing), and the problems are listed
	// in the same order whichever ends first. Reading and strictly decoding
	// the tree is most of the plan stage, which Prosody's start waits for.
	var featureErrs []error
	var wg sync.WaitGroup
	wg.Go(func() { featureErrs = t.loadFeatures(filepath.Join(builtinDir, "features"), false) })
	coreErrs := t.loadCore(filepath.Join(builtinDir, "core"))
	profileErrs := t.loadProfiles(filepath.Join(builtinDir, "profiles"), false)
	restErrs := t.loadEnvironments(filepath.Join(builtinDir, "environments"))
	restErrs = append(restErrs, t.loadLegacy(filepath.Join(builtinDir, "legacy", "modules.d"))...)
	restErrs = append(restErrs, t.loadVHostTemplate(filepath.Join(builtinDir, "templates", VHostTemplateFile), false)...)
	wg.Wait()
	errs = slices.Concat(errs, coreErrs, profileErrs, featureErrs, restErrs)
	if customDir != "" {
		if _, err := os.Stat(customDir); err == nil {
			errs = append(errs, t.loadProfiles(filepath.Join(customDir, "profiles"), true)...)
			errs = append(errs, t.loadFeatures(filepath.Join(customDir, "features"), true)...)
			errs = append(errs, t.loadVHostTemplate(filepath.Join(customDir, "templates", VHostTemplateFile), true)...)
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("custom config dir %s: %w", customDir, err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, t.checkReferences()...)
	}
	if len(errs) > 0 {
		return nil, &LoadError{Errs: errs}
	}
	return t, nil
}

// WithLegacyDir returns a copy of t whose legacy module lists (included in legacy mode,
// Inputs.Legacy) are the *.cfg.lua files of dir instead of the tree's legacy/modules.d:
// the operator's own modules.d (PROSODY_LEGACY_DIR). An empty dir returns t. t is not
// changed.
func (t *Tree) WithLegacyDir(dir string) (*Tree, error) {
	if dir == "" {
		return t, nil
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("legacy modules.d directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("legacy modules.d directory %s: not a directory", dir)
	}
	c := *t
	c.legacy = nil
	if errs := c.loadLegacy(dir); len(errs) > 0 {
		return nil, &LoadError{Errs: errs}
	}
	return &c, nil
}

// LegacyDir is the directory the legacy module lists are read from.
func (t *Tree) LegacyDir() string {
	if len(t.legacy) > 0 {
		return filepath.Dir(t.legacy[0].Source)
	}
	return filepath.Join(t.builtinDir, "legacy", "modules.d")
}

// LoadError lists every problem found in a tree, one per line.
type LoadError struct {
	Errs []error
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		lines[i] = err.Error()
	}
	return fmt.Sprintf("config tree has %d problem(s):\n  %s", len(e.Errs), strings.Join(lines, "\n  "))
}

// Unwrap returns the individual problems.
func (e *LoadError) Unwrap() []error { return e.Errs }

// listDir returns the names in dir, sorted; a missing dir is empty. Anything but a
// directory (a FIFO, a file) is an error, found before it is opened, so it cannot block.
func listDir(dir string) ([]os.DirEntry, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return entries, nil
}

func (t *Tree) loadCore(dir string) []error {
	entries, err := listDir(dir)
	if err != nil {
		return []error{err}
	}
	var errs []error
	// The documented order of the core layers; other core files follow by name.
	rank := func(name string) int {
		switch name {
		case "global":
			return 0
		case "security":
			return 1
		case "database":
			return 2
		}
		return 3
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			names = append(names, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	sort.SliceStable(names, func(i, j int) bool {
		ri, rj := rank(names[i]), rank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	d := openTreeDir(dir)
	if d != nil {
		defer d.Close()
	}
	for _, n := range names {
		if err := CheckName("core file", n); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			continue
		}
		path := filepath.Join(dir, n+".json")
		var c Core
		if err := decodeStrictIn(d, dir, n+".json", &c); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, validateLayer(path, "", &c.Layer)...)
		errs = append(errs, checkNoHost(path, "", &c.Layer)...)
		t.core = append(t.core, coreLayer{name: "core/" + n, source: path, layer: c.Layer})
	}
	return errs
}

// VHostTemplateFile is the VirtualHost template's file name, in the templates/ directory
// of the built-in tree and of the custom directory.
const VHostTemplateFile = "vhost.json"

// VHostTemplateLabel is the reason the plan gives for what the VirtualHost template put in
// a VirtualHost (what `entrypoint explain` prints after "because:").
const VHostTemplateLabel = "template vhost"

// loadVHostTemplate reads templates/vhost.json at path, when it exists. A custom one
// replaces the built-in one whole (recorded in Shadowed when both exist).
func (t *Tree) loadVHostTemplate(path string, custom bool) []error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var v VHostTemplate
	if err := decodeStrict(path, &v); err != nil {
		return []error{err}
	}
	l := Layer{Host: v.Host, When: v.When}
	errs := validateLayer(path, "", &l)
	errs = append(errs, checkHostOnly(path, "", &l)...)
	if custom && t.vhost != nil {
		t.shadowed = append(t.shadowed, Shadow{Kind: "template", Name: "vhost", Builtin: t.vhost.source, Custom: path})
	}
	t.vhost = &coreLayer{name: VHostTemplateLabel, source: path, layer: l}
	return errs
}

func (t *Tree) loadProfiles(dir string, custom bool) []error {
	entries, err := listDir(dir)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := CheckName("profile", e.Name()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			continue
		}
		path := filepath.Join(dir, e.Name(), "profile.json")
		if _, err := os.Stat(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: profile directory without profile.json: %w", filepath.Join(dir, e.Name()), err))
			continue
		}
		var p Profile
		if err := decodeStrict(path, &p); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Source = path
		if p.Name != e.Name() {
			errs = append(errs, fmt.Errorf("%s: key \"name\" is %q but the directory is %q: they must match", path, p.Name, e.Name()))
			continue
		}
		errs = append(errs, validateLayer(path, "", &p.Layer)...)
		if old, ok := t.profiles[p.Name]; ok && custom {
			t.shadowed = append(t.shadowed, Shadow{Kind: "profile", Name: p.Name, Builtin: old.Source, Custom: path})
		}
		t.profiles[p.Name] = &p
	}
	return errs
}

func (t *Tree) loadFeatures(dir string, custom bool) []error {
	groups, err := listDir(dir)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, g := range groups {
		if !g.IsDir() {
			errs = append(errs, fmt.Errorf("%s: %s is not a directory: features must be in a group directory: features/<group>/<name>.json", dir, strconv.Quote(g.Name())))
			continue
		}
		if why := nameProblem(g.Name()); why != "" {
			errs = append(errs, fmt.Errorf("%s: feature group %s %s; accepted: %s", dir, strconv.Quote(g.Name()), why, NameRule))
			continue
		}
		files, err := listDir(filepath.Join(dir, g.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		gdir := filepath.Join(dir, g.Name())
		d := openTreeDir(gdir)
		for _, f := range files {
			if f.IsDir() || !strings.HasSuffix(f.Name(), ".json") {
				continue
			}
			want := g.Name() + "/" + strings.TrimSuffix(f.Name(), ".json")
			if err := CheckName("feature", want); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dir, g.Name()), err))
				continue
			}
			path := filepath.Join(gdir, f.Name())
			var ft Feature
			if err := decodeStrictIn(d, gdir, f.Name(), &ft); err != nil {
				errs = append(errs, err)
				continue
			}
			ft.Source = path
			if ft.Name != want {
				errs = append(errs, fmt.Errorf("%s: key \"name\" is %q but the path says %q: they must match", path, ft.Name, want))
				continue
			}
			errs = append(errs, validateFeature(path, &ft)...)
			if old, ok := t.features[ft.Name]; ok && custom {
				t.shadowed = append(t.shadowed, Shadow{Kind: "feature", Name: ft.Name, Builtin: old.Source, Custom: path})
			}
			t.features[ft.Name] = &ft
		}
		if d != nil {
			_ = d.Close()
		}
	}
	return errs
}

func (t *Tree) loadEnvironments(dir string) []error {
	entries, err := listDir(dir)
	if err != nil {
		return []error{err}
	}
	var errs []error
	d := openTreeDir(dir)
	if d != nil {
		defer d.Close()
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		if err := CheckName("environment", strings.TrimSuffix(e.Name(), ".json")); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			continue
		}
		path := filepath.Join(dir, e.Name())
		var env Environment
		if err := decodeStrictIn(d, dir, e.Name(), &env); err != nil {
			errs = append(errs, err)
			continue
		}
		env.Source = path
		if want := strings.TrimSuffix(e.Name(), ".json"); env.Name != want {
			errs = append(errs, fmt.Errorf("%s: key \"name\" is %q but the file is %q: they must match", path, env.Name, want))
			continue
		}
		if env.LogLevel != "" && !validLogLevel(env.LogLevel) {
			errs = append(errs, fmt.Errorf("%s: key \"log_level\" is %q: accepted are debug, info, warn, error", path, env.LogLevel))
		}
		errs = append(errs, validateLayer(path, "", &env.Layer)...)
		t.environments[env.Name] = &env
	}
	return errs
}

func (t *Tree) loadLegacy(dir string) []error {
	entries, err := listDir(dir)
	if err != nil {
		return []error{err}
	}
	var errs []error
	d := openTreeDir(dir)
	if d != nil {
		defer d.Close()
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".cfg.lua") {
			continue
		}
		if err := CheckName("legacy file", strings.TrimSuffix(e.Name(), ".cfg.lua")); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := readTreeFileIn(d, dir, e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.legacy = append(t.legacy, LegacyFile{Name: "legacy/modules.d/" + e.Name(), Source: path, Code: string(data)})
	}
	return errs
}

func validLogLevel(s string) bool {
	switch s {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// checkReferences resolves profile features, requires, conflicts and toggle names.
func (t *Tree) checkReferences() []error {
	var errs []error
	for _, name := range sortedKeys(t.profiles) {
		p := t.profiles[name]
		for _, f := range p.Features {
			if _, ok := t.features[f]; !ok {
				errs = append(errs, fmt.Errorf("%s: key \"features\": unknown feature %q%s", p.Source, f, didYouMean(f, sortedKeys(t.features))))
			}
		}
		for _, f := range p.OptionalFeatures {
			if _, ok := t.features[f]; !ok {
				errs = append(errs, fmt.Errorf("%s: key \"optional_features\": unknown feature %q%s", p.Source, f, didYouMean(f, sortedKeys(t.features))))
			}
		}
	}
	owner := map[string]string{} // toggle name -> what it switches
	claim := func(src, toggle, what string) {
		if prev, ok := owner[toggle]; ok && prev != what {
			errs = append(errs, fmt.Errorf("%s: toggle %s switches %s but also %s: toggle names must be unique", src, toggle, what, prev))
			return
		}
		owner[toggle] = what
	}
	for _, name := range sortedKeys(t.features) {
		claim(t.features[name].Source, GenericToggle(name), "feature "+name)
	}
	for _, name := range sortedKeys(t.features) {
		f := t.features[name]
		for _, r := range f.Requires {
			if _, ok := t.features[r]; !ok {
				errs = append(errs, fmt.Errorf("%s: key \"requires\": unknown feature %q%s", f.Source, r, didYouMean(r, sortedKeys(t.features))))
			}
		}
		for _, c := range f.Conflicts {
			if _, ok := t.features[c]; !ok {
				errs = append(errs, fmt.Errorf("%s: key \"conflicts\": unknown feature %q%s", f.Source, c, didYouMean(c, sortedKeys(t.features))))
			}
		}
		for _, pn := range sortedKeys(f.Parts) {
			for _, tg := range f.Parts[pn].Toggles {
				claim(f.Source, tg, "feature "+name+" part "+pn)
			}
		}
	}
	// A feature's extra toggle may switch several features (the design's
	// PROSODY_FEATURES_WEB_ENABLED is web/http and web/websocket), but never a part, nor
	// another feature's generic toggle.
	shared := map[string][]string{}
	src := map[string]string{}
	for _, name := range sortedKeys(t.features) {
		for _, tg := range t.features[name].Toggles {
			if tg != GenericToggle(name) {
				shared[tg] = append(shared[tg], name)
				src[tg] = t.features[name].Source
			}
		}
	}
	for _, tg := range sortedKeys(shared) {
		claim(src[tg], tg, "feature "+strings.Join(shared[tg], " and "))
	}
	return errs
}

// GenericToggle is the toggle that always switches a feature:
// PROSODY_FEATURES_<GROUP>_<NAME>, upper-cased, with '-' and '/' turned into '_'.
func GenericToggle(feature string) string {
	r := strings.NewReplacer("/", "_", "-", "_", ".", "_")
	return "PROSODY_FEATURES_" + strings.ToUpper(r.Replace(feature))
}

// Profiles returns the profile names, sorted.
func (t *Tree) Profiles() []string { return sortedKeys(t.profiles) }

// Features returns the feature names, sorted.
func (t *Tree) Features() []string { return sortedKeys(t.features) }

// Environments returns the environment names, sorted.
func (t *Tree) Environments() []string { return sortedKeys(t.environments) }

// Profile returns the named profile, or nil. The caller must not modify it.
func (t *Tree) Profile(name string) *Profile { return t.profiles[name] }

// Feature returns the named feature, or nil. The caller must not modify it.
func (t *Tree) Feature(name string) *Feature { return t.features[name] }

// Environment returns the named environment, or nil. The caller must not modify it.
func (t *Tree) Environment(name string) *Environment { return t.environments[name] }

// Shadowed lists the custom profiles and features that replace built-ins.
func (t *Tree) Shadowed() []Shadow { return append([]Shadow(nil), t.shadowed...) }

// BuiltinDir is the directory the built-in tree was loaded from.
func (t *Tree) BuiltinDir() string { return t.builtinDir }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
