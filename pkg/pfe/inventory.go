package pfe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// InstalledModule is one module Prosody can load here, and the features of
// the tree that use it.
type InstalledModule struct {
	Name string `json:"name"`
	// Source is core (Prosody's own), community (Debian's prosody-modules,
	// installed into Prosody's directory) or plugin-dir (PROSODY_PLUGIN_DIR).
	Source   string   `json:"source"`
	Path     string   `json:"path"`
	Features []string `json:"features,omitempty"`
}

// DpkgList is the file dpkg keeps of what the prosody-modules package installed.
const DpkgList = "/var/lib/dpkg/info/prosody-modules.list"

// Inventory lists the modules installed in Prosody's module directory and in
// pluginDir ("" for none), sorted by name. A module in pluginDir shadows one of
// the same name in Prosody's directory, as plugin_paths does. dpkgList names
// the community modules (DpkgList; a missing file means none are known).
func (t *Tree) Inventory(pluginDir, dpkgList string) ([]InstalledModule, error) {
	users := map[string][]string{}
	for _, name := range t.Features() {
		f := t.Feature(name)
		for _, m := range layerModules(f.Layer, f.Parts) {
			if !slices.Contains(users[m], name) {
				users[m] = append(users[m], name)
			}
		}
	}
	community := communityModules(dpkgList)
	type dir struct{ path, source string }
	dirs := []dir{{DebianModuleDir, "core"}}
	if pluginDir != "" {
		dirs = append([]dir{{pluginDir, "plugin-dir"}}, dirs...)
	}
	var mods []InstalledModule
	seen := map[string]bool{}
	for _, d := range dirs {
		found, err := modulesIn(d.path)
		if err != nil {
			return nil, err
		}
		for name, path := range found {
			if seen[name] {
				continue
			}
			seen[name] = true
			src := d.source
			if src == "core" && community[name] {
				src = "community"
			}
			mods = append(mods, InstalledModule{Name: name, Source: src, Path: path, Features: users[name]})
		}
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	return mods, nil
}

// layerModules lists the modules a feature's layers (with when blocks and
// parts) add: global, host and component modules, and component types.
func layerModules(l Layer, parts map[string]Part) []string {
	var out []string
	for _, sec := range []*Section{l.Global, l.Host} {
		if sec != nil {
			out = append(out, sec.Modules...)
		}
	}
	for _, c := range l.Components {
		if c.Type != "" {
			out = append(out, c.Type)
		}
		out = append(out, c.Modules...)
	}
	for _, w := range l.When {
		out = append(out, layerModules(w.Layer, nil)...)
	}
	for _, p := range parts {
		out = append(out, layerModules(p.Layer, nil)...)
	}
	return out
}

// modulesIn maps module names to files in dir, with Prosody's loader layouts
// (mod_x.lua, mod_x/mod_x.lua). A missing dir has none.
func modulesIn(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read module directory %s: %w", dir, err)
	}
	out := map[string]string{}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "mod_") {
			continue
		}
		switch {
		case e.IsDir():
			if _, err := os.Stat(filepath.Join(dir, n, n+".lua")); err == nil {
				out[strings.TrimPrefix(n, "mod_")] = filepath.Join(dir, n)
			}
		case strings.HasSuffix(n, ".lua"):
			out[strings.TrimSuffix(strings.TrimPrefix(n, "mod_"), ".lua")] = filepath.Join(dir, n)
		}
	}
	return out, nil
}

// communityModules names the modules dpkg's file list puts into Prosody's own
// module directory.
func communityModules(dpkgList string) map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile(dpkgList)
	if err != nil {
		return out // not Debian, or the package is not installed
	}
	prefix := DebianModuleDir + "/"
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		first, _, _ := strings.Cut(rest, "/")
		if name, ok := strings.CutPrefix(first, "mod_"); ok {
			out[strings.TrimSuffix(name, ".lua")] = true
		}
	}
	return out
}

// WriteModules prints the inventory as a table: module, source, features.
func WriteModules(w io.Writer, mods []InstalledModule) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tSOURCE\tFEATURES")
	for _, m := range mods {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, m.Source, strings.Join(m.Features, ","))
	}
	return tw.Flush()
}

// WriteModulesJSON prints the inventory as indented JSON.
func WriteModulesJSON(w io.Writer, mods []InstalledModule) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(mods)
}
