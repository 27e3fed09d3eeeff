package pfe

import "slices"

// ManagerSubcommand returns the `entrypoint profiles` subcommand an argument names:
// the design's profile manager script accepts short aliases (ls, check, new, gen) and
// -h/--help; anything else is returned as given.
func ManagerSubcommand(arg string) string {
	switch arg {
	case "ls":
		return "list"
	case "check":
		return "validate"
	case "new":
		return "create"
	case "gen":
		return "generate"
	case "-h", "--help":
		return "help"
	}
	return arg
}

// ManagerHelp is the text of `entrypoint profiles help`: the design's profile manager,
// with this product's verbs.
const ManagerHelp = `Profile manager: the profiles, features and environments of the config tree

Usage: entrypoint profiles <command> [options]

Commands:
  list, ls                         list the profiles
  show NAME                        a profile: its features, optional features and resources
  features                         list the features
  validate, check [NAME | --all]   render and check profile NAME (default: PROSODY_PROFILE)
                                   in every environment; --all: every profile
  create, new NAME [FROM]          write a custom profile NAME copied from profile FROM
                                   (default: standard; "template": the empty template)
  generate, gen [PROFILE [ENV [OUT]]]
                                   render prosody.cfg.lua (default: PROSODY_PROFILE,
                                   PROSODY_ENVIRONMENT, stdout)
  migrate NAME                     write a custom profile NAME from the legacy modules.d
                                   lists (PROSODY_LEGACY_DIR) and print the report
  help                             this text

Examples:
  entrypoint profiles list
  entrypoint profiles create mycompany enterprise
  entrypoint profiles validate mycompany
  entrypoint profiles generate mycompany production
  entrypoint features create collaboration/room-blocklist
  entrypoint features create collaboration/gateway --component muc
  entrypoint env generate mycompany --all --out .`

// ProfileToggle is a feature toggle and whether a profile has what it switches.
type ProfileToggle struct {
	Name string
	On   bool
}

// ProfileToggles returns, for every feature that has a toggle of the design's (a feature's
// own "toggles"), that toggle set to whether profile name has the feature: what the
// design's env generator writes per profile. A toggle shared by features the profile
// treats differently is replaced by their generic toggles. The list is sorted by name;
// nil when the profile does not exist.
func (t *Tree) ProfileToggles(name string) []ProfileToggle {
	p := t.profiles[name]
	if p == nil {
		return nil
	}
	has := func(f string) bool { return slices.Contains(p.Features, f) }
	targets := t.toggleTargets()
	seen := map[string]bool{}
	var out []ProfileToggle
	add := func(tg string, on bool) {
		if !seen[tg] {
			seen[tg] = true
			out = append(out, ProfileToggle{Name: tg, On: on})
		}
	}
	for _, fn := range t.Features() {
		f := t.features[fn]
		if len(f.Toggles) == 0 {
			continue
		}
		tg := f.Toggles[0]
		same := true
		for _, target := range targets[tg] {
			same = same && has(target[0]) == has(fn)
		}
		if !same {
			tg = GenericToggle(fn)
		}
		add(tg, has(fn))
	}
	slices.SortFunc(out, func(a, b ProfileToggle) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}
