package pfe

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// legacyModule matches the quoted module names of a legacy modules.d list.
var legacyModule = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`"([A-Za-z0-9_]+)"`) })

// LegacyMigration is what the legacy modules.d lists come to in features.
type LegacyMigration struct {
	// Report says, per file and module, which feature replaces it (the text
	// PROSODY_MIGRATION_MODE=true prints).
	Report string
	// Add are the features, sorted, that the plan lacks for the modules the lists load.
	Add []string
	// Keep are the modules, sorted, that no feature provides: a migrated profile loads
	// them itself.
	Keep []string
}

// LegacyReport maps every module the legacy modules.d lists load to the
// feature that replaces it (PROSODY_MIGRATION_MODE=true), and says which of
// those features the plan already has. legacyDir holds the lists ("": the
// tree's legacy/modules.d); the map is the tree's legacy/modules.d/feature-map.json.
func LegacyReport(configDir, legacyDir string, plan *Plan) (string, error) {
	m, err := MigrateLegacy(configDir, legacyDir, plan)
	if err != nil {
		return "", err
	}
	return m.Report, nil
}

// MigrateLegacy reads the legacy module lists of legacyDir ("": the tree's
// legacy/modules.d) and maps their modules to features with the tree's
// feature-map.json, against the features plan already has. It only reads files.
func MigrateLegacy(configDir, legacyDir string, plan *Plan) (*LegacyMigration, error) {
	mapDir := filepath.Join(configDir, "legacy", "modules.d")
	dir := legacyDir
	if dir == "" {
		dir = mapDir
	}
	raw, err := readTreeFile(filepath.Join(mapDir, "feature-map.json"))
	if err != nil {
		return nil, fmt.Errorf("read the legacy module map: %w", err)
	}
	var fm struct {
		Modules map[string]*string `json:"modules"`
	}
	if err := json.Unmarshal(raw, &fm); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(mapDir, "feature-map.json"), err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.cfg.lua"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.cfg.lua module lists in %s", dir)
	}
	sort.Strings(files)
	enabled := map[string]bool{}
	for _, f := range plan.Features {
		enabled[f.Name] = true
	}
	var b strings.Builder
	var add, keep []string
	for _, f := range files {
		src, err := readTreeFile(f)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s:\n", filepath.Base(f))
		for _, line := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "--") {
				continue
			}
			for _, m := range legacyModule().FindAllStringSubmatch(line, -1) {
				mod := m[1]
				feat, known := fm.Modules[mod]
				switch {
				case !known || feat == nil:
					why := "not in the map"
					if known {
						why = "no feature provides it"
					}
					fmt.Fprintf(&b, "  %-24s %s: keep it in a custom feature (a migrated profile loads it itself)\n", mod, why)
					if !slices.Contains(keep, mod) {
						keep = append(keep, mod)
					}
				case enabled[*feat]:
					fmt.Fprintf(&b, "  %-24s -> %s (already in profile %s)\n", mod, *feat, plan.Profile)
				default:
					fmt.Fprintf(&b, "  %-24s -> %s (not enabled)\n", mod, *feat)
					if !slices.Contains(add, *feat) {
						add = append(add, *feat)
					}
				}
			}
		}
	}
	sort.Strings(add)
	sort.Strings(keep)
	if len(add) > 0 {
		fmt.Fprintf(&b, "to get the same modules without legacy mode: PROSODY_FEATURES=+%s\n", strings.Join(add, ",+"))
	} else {
		fmt.Fprintf(&b, "every mapped module is already provided by profile %s: PROSODY_LEGACY_MODE can be turned off\n", plan.Profile)
	}
	fmt.Fprintf(&b, "or write a profile with them: entrypoint profiles migrate NAME (profile %s plus these features)\n", plan.Profile)
	return &LegacyMigration{Report: b.String(), Add: add, Keep: keep}, nil
}

// MigrateProfile writes the custom profile NAME (the design's migrate-to-features step):
// a copy of plan's profile with the features the legacy lists need added, and the
// modules no feature provides loaded by the profile's own layer. It returns the path
// written and the migration. Errors are as for CreateProfile, or the lists' errors.
func MigrateProfile(builtinDir, customDir, legacyDir, name string, plan *Plan) (string, *LegacyMigration, error) {
	t, err := loadForCreate(builtinDir, customDir, "profile", name)
	if err != nil {
		return "", nil, err
	}
	if old := t.Profile(name); old != nil {
		return "", nil, fmt.Errorf("profile %q %w (%s)", name, ErrExists, old.Source)
	}
	m, err := MigrateLegacy(builtinDir, legacyDir, plan)
	if err != nil {
		return "", nil, err
	}
	base := t.Profile(plan.Profile)
	if base == nil {
		return "", nil, fmt.Errorf("profile %q of the plan does not exist", plan.Profile)
	}
	p := *base
	p.Name = name
	p.Description = "Custom profile " + name + ", migrated from the legacy modules.d lists onto " + base.Name + ": " + base.Description
	p.Features = append(slices.Clone(base.Features), m.Add...)
	if len(m.Keep) > 0 {
		g := Section{}
		if base.Global != nil {
			g = *base.Global
		}
		g.Modules = append(slices.Clone(g.Modules), m.Keep...)
		p.Global = &g
	}
	path, err := writeCustom(builtinDir, customDir, filepath.Join("profiles", name, "profile.json"), &p)
	if err != nil {
		return "", nil, err
	}
	return path, m, nil
}
