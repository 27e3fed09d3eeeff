package pfe

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// legacyModule matches the quoted module names of a legacy modules.d list.
var legacyModule = regexp.MustCompile(`"([A-Za-z0-9_]+)"`)

// LegacyReport maps every module the legacy modules.d lists load to the
// feature that replaces it (PROSODY_MIGRATION_MODE=true), and says which of
// those features the plan already has. It reads only files of the tree, as Load does
// (regular files only, never blocking on a FIFO).
func LegacyReport(configDir string, plan *Plan) (string, error) {
	dir := filepath.Join(configDir, "legacy", "modules.d")
	raw, err := readTreeFile(filepath.Join(dir, "feature-map.json"))
	if err != nil {
		return "", fmt.Errorf("read the legacy module map: %w", err)
	}
	var fm struct {
		Modules map[string]*string `json:"modules"`
	}
	if err := json.Unmarshal(raw, &fm); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, "feature-map.json"), err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.cfg.lua"))
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	enabled := map[string]bool{}
	for _, f := range plan.Features {
		enabled[f.Name] = true
	}
	var b strings.Builder
	var add []string
	for _, f := range files {
		src, err := readTreeFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s:\n", filepath.Base(f))
		for _, line := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "--") {
				continue
			}
			for _, m := range legacyModule.FindAllStringSubmatch(line, -1) {
				mod := m[1]
				feat, known := fm.Modules[mod]
				switch {
				case !known:
					fmt.Fprintf(&b, "  %-24s not in the map: keep it in a custom feature\n", mod)
				case feat == nil:
					fmt.Fprintf(&b, "  %-24s no feature provides it: keep it in a custom feature\n", mod)
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
	if len(add) > 0 {
		sort.Strings(add)
		fmt.Fprintf(&b, "to get the same modules without legacy mode: PROSODY_FEATURES=+%s\n", strings.Join(add, ",+"))
	} else {
		fmt.Fprintf(&b, "every mapped module is already provided by profile %s: PROSODY_LEGACY_MODE can be turned off\n", plan.Profile)
	}
	return b.String(), nil
}
