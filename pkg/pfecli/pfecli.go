// Package pfecli is the command line of the PFE tree: the verbs profiles,
// features, render, generate, explain, diff and validate, with their usage
// text, flag parsing, printing and exit codes (pkg/exitcode). They form one
// command family over one tree, so they are one package with one entry
// point, Run; cmd/entrypoint builds its Config from the settings.
package pfecli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/cmdroute"
	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// usageText is printed for usage errors.
const usageText = `usage:
  entrypoint profiles list|ls [--json] | show NAME [--json] | create|new NAME [FROM] | validate|check [NAME | --all] [--json]
                      | generate|gen [PROFILE [ENVIRONMENT [OUT]]] | features | migrate NAME | help
  entrypoint features list [--json] | show NAME [--json] | create GROUP/NAME [--component TYPE]
  entrypoint render [--profile P] [--environment E] [--out FILE] [--json]
  entrypoint generate [PROFILE [ENVIRONMENT [OUT]]]
  entrypoint explain MODULE|OPTION|FEATURE [--json]
  entrypoint diff [--against FILE]
  entrypoint validate [--json]`

// Config is what the verbs work on, taken from the settings by the caller.
type Config struct {
	// Inputs are the plan inputs: the profile and environment the verbs
	// default to, the toggles, the domains, ports and directories.
	Inputs pfe.Inputs
	// BuiltinDir is the config tree; CustomDir the user's tree over it (may be
	// missing; "": none).
	BuiltinDir, CustomDir string
	// LegacyDir is PROSODY_LEGACY_DIR; "": the tree's.
	LegacyDir string
	// ConfigFile is PROSODY_CONFIG_FILE; "": Prosody runs what the tree renders.
	// When set, explain says the tree explains nothing about that file (exit 0),
	// and render and diff note on stderr that Prosody does not run their output.
	ConfigFile string
	// Credential, when set, is called by validate before it checks anything:
	// it returns who runs the checkers (prosody) and warnings, which are
	// printed; an error is printed and ends the verb with exit 78. nil: the
	// checkers run as the entrypoint.
	Credential func() (*supervise.Credential, []string, error)
}

// Run runs one PFE verb (profiles, features, render, generate, explain, diff,
// validate) with its arguments over cfg. It writes results to stdout, problems
// to stderr, and returns the exit code: 0 ok, 1 differences or failed
// validation, 2 usage, 78 configuration errors. It reads no environment
// variables (validate hands the process's environment to the checkers).
func Run(verb string, args []string, cfg Config, stdout, stderr io.Writer) int {
	if cfg.ConfigFile != "" {
		switch verb {
		case "explain":
			// The tree explains nothing about a file it did not make.
			fmt.Fprintf(stdout, "Prosody runs your own config, PROSODY_CONFIG_FILE=%q: the PFE tree is not used, so nothing in it explains %s; read that file (/status shows config_source \"file\")\n",
				cfg.ConfigFile, strings.Join(args, " "))
			return exitcode.OK
		case "render", "diff":
			fmt.Fprintf(stderr, "entrypoint: note: Prosody runs PROSODY_CONFIG_FILE=%q, not what the PFE tree renders\n", cfg.ConfigFile)
		}
	}
	v := verbs{in: cfg.Inputs, builtinDir: cfg.BuiltinDir, customDir: cfg.CustomDir, legacyDir: cfg.LegacyDir, credential: cfg.Credential,
		stdout: stdout, stderr: stderr}
	return v.dispatch(verb, args)
}

func (v *verbs) dispatch(verb string, args []string) int {
	switch verb {
	case "profiles":
		return v.profiles(args)
	case "features":
		return v.features(args)
	case "render":
		return v.render(args)
	case "explain":
		return v.explain(args)
	case "diff":
		return v.diff(args)
	case "validate":
		return v.validate(args, "")
	case "generate":
		pos, ok := v.parse(flag.NewFlagSet("generate", flag.ContinueOnError), args)
		if !ok || len(pos) > 3 {
			return v.usage("generate takes [PROFILE [ENVIRONMENT [OUT]]]")
		}
		return v.generate(pos, "")
	}
	return v.usage("unknown verb %q", verb)
}

// verbs is one call of Run: its Config, its writers and what the verb parsed.
type verbs struct {
	in                    pfe.Inputs
	builtinDir, customDir string
	legacyDir             string    // PROSODY_LEGACY_DIR; "": the tree's
	tree                  *pfe.Tree // set by load
	// credential is Config.Credential: validate calls it before it checks
	// anything, for cred.
	credential func() (*supervise.Credential, []string, error)
	// cred is who validate runs the checkers as (prosody); nil: the entrypoint.
	cred           *supervise.Credential
	stdout, stderr io.Writer
	asJSON         bool
}

func (v *verbs) usage(format string, a ...any) int {
	fmt.Fprintf(v.stderr, "error: "+format+"\n%s\n", append(a, usageText)...)
	return exitcode.Usage
}

// parse parses flags anywhere among args and returns the positional arguments.
func (v *verbs) parse(fs *flag.FlagSet, args []string) ([]string, bool) {
	fs.SetOutput(io.Discard)
	fs.BoolVar(&v.asJSON, "json", false, "print JSON")
	pos, err := cmdroute.ParseInterspersed(fs, args)
	if err != nil {
		v.usage("%s: %v", fs.Name(), err)
		return nil, false
	}
	return pos, true
}

func (v *verbs) load() (*pfe.Tree, int) {
	t, err := pfe.Load(v.builtinDir, v.customDir)
	if err == nil {
		t, err = t.WithLegacyDir(v.legacyDir)
	}
	if err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return nil, exitcode.Config
	}
	v.tree = t
	return t, exitcode.OK
}

func (v *verbs) printJSON(x any) int {
	enc := json.NewEncoder(v.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(x); err != nil {
		fmt.Fprintf(v.stderr, "error: encode JSON: %v\n", err)
		return exitcode.Failed
	}
	return exitcode.OK
}

func (v *verbs) profiles(args []string) int {
	fs := flag.NewFlagSet("profiles", flag.ContinueOnError)
	from := fs.String("from", "", "profile to copy (or the second argument)")
	all := fs.Bool("all", false, "validate every profile")
	out := fs.String("out", "", "generate: write here")
	pos, ok := v.parse(fs, args)
	if !ok {
		return exitcode.Usage
	}
	if len(pos) == 0 {
		return v.usage("profiles needs a subcommand")
	}
	sub, rest := pfe.ManagerSubcommand(pos[0]), pos[1:]
	switch {
	case sub == "help":
		fmt.Fprintln(v.stdout, pfe.ManagerHelp)
		return exitcode.OK
	case sub == "list" && len(rest) == 0:
		t, code := v.load()
		if t == nil {
			return code
		}
		if v.asJSON {
			return v.printJSON(t.ProfileList())
		}
		t.WriteProfileList(v.stdout)
		return exitcode.OK
	case sub == "show" && len(rest) == 1:
		t, code := v.load()
		if t == nil {
			return code
		}
		p := t.Profile(rest[0])
		if p == nil {
			fmt.Fprintf(v.stderr, "error: profile %q does not exist; profiles: %s\n", rest[0], strings.Join(t.Profiles(), ", "))
			return exitcode.Config
		}
		if v.asJSON {
			return v.printJSON(p)
		}
		t.WriteProfileText(v.stdout, p)
		return exitcode.OK
	case sub == "create" && (len(rest) == 1 || len(rest) == 2 && *from == ""):
		if len(rest) == 2 {
			*from = rest[1]
		}
		return v.created("profile", rest[0])(pfe.CreateProfile(v.builtinDir, v.customDir, rest[0], *from))
	case sub == "migrate" && len(rest) == 1:
		return v.migrate(rest[0])
	case sub == "features" && len(rest) == 0:
		return v.features([]string{"list"})
	case sub == "validate" && len(rest) <= 1 && !(*all && len(rest) == 1):
		name := v.in.Profile // the design: ${2:-${PROSODY_PROFILE:-standard}}
		if len(rest) == 1 {
			name = rest[0]
		}
		if *all {
			name = ""
		}
		return v.validate(nil, name)
	case sub == "generate" && len(rest) <= 3:
		return v.generate(rest, *out)
	}
	return v.usage("profiles %s: wrong subcommand or arguments", strings.Join(pos, " "))
}

// created prints where CreateProfile or CreateFeature wrote, or why they did not.
func (v *verbs) created(kind, name string) func(string, error) int {
	return func(path string, err error) int {
		switch {
		case errors.Is(err, pfe.ErrBadName):
			return v.usage("%v", err)
		case errors.Is(err, pfe.ErrExists):
			fmt.Fprintf(v.stderr, "error: %v\n", err)
			return exitcode.Failed
		case err != nil:
			fmt.Fprintf(v.stderr, "error: %v\n", err)
			return exitcode.Config
		}
		fmt.Fprintf(v.stdout, "created %s %s at %s\n", kind, name, path)
		return exitcode.OK
	}
}

// migrate writes profile name from the legacy modules.d lists over the plan's profile.
func (v *verbs) migrate(name string) int {
	p, _, code := v.planAndRender(v.in)
	if p == nil {
		return code
	}
	path, m, err := pfe.MigrateProfile(v.builtinDir, v.customDir, v.legacyDir, name, p)
	if m != nil {
		fmt.Fprint(v.stdout, m.Report)
	}
	return v.created("profile", name)(path, err)
}

// generate renders profile P in environment E (the design's `generate P E [OUT]`),
// defaulting to PROSODY_PROFILE and PROSODY_ENVIRONMENT, into OUT or stdout.
func (v *verbs) generate(pos []string, out string) int {
	in := v.in
	for i, dst := range []*string{&in.Profile, &in.Environment, &out} {
		if i < len(pos) {
			*dst = pos[i]
		}
	}
	return v.renderTo(in, out)
}

func (v *verbs) features(args []string) int {
	fs := flag.NewFlagSet("features", flag.ContinueOnError)
	component := fs.String("component", "", "create: a feature adding a Component of this type")
	pos, ok := v.parse(fs, args)
	if !ok {
		return exitcode.Usage
	}
	if len(pos) == 2 && pos[0] == "create" {
		return v.created("feature", pos[1])(pfe.CreateFeature(v.builtinDir, v.customDir, pos[1], *component))
	}
	if len(pos) == 0 || !(pos[0] == "list" && len(pos) == 1 || pos[0] == "show" && len(pos) == 2) {
		return v.usage("features: use list, show NAME or create GROUP/NAME")
	}
	t, code := v.load()
	if t == nil {
		return code
	}
	if pos[0] == "show" {
		f := t.Feature(pos[1])
		if f == nil {
			fmt.Fprintf(v.stderr, "error: feature %q does not exist; see entrypoint features list\n", pos[1])
			return exitcode.Config
		}
		if v.asJSON {
			return v.printJSON(f)
		}
		f.WriteText(v.stdout)
		return exitcode.OK
	}
	if v.asJSON {
		return v.printJSON(t.FeatureSummaries())
	}
	t.WriteFeatureList(v.stdout)
	return exitcode.OK
}

// planAndRender loads the tree, plans in and renders it.
func (v *verbs) planAndRender(in pfe.Inputs) (*pfe.Plan, []byte, int) {
	t, code := v.load()
	if t == nil {
		return nil, nil, code
	}
	p, err := t.Plan(in)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: plan profile %s, environment %s:\n%v\n", in.Profile, in.Environment, err)
		return nil, nil, exitcode.Config
	}
	out, err := luacfg.Render(p)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return nil, nil, exitcode.Config
	}
	return p, out, exitcode.OK
}

func (v *verbs) render(args []string) int {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	in := v.in
	fs.StringVar(&in.Profile, "profile", in.Profile, "profile")
	fs.StringVar(&in.Environment, "environment", in.Environment, "environment")
	out := fs.String("out", "", `write here instead of stdout ("-" is stdout); a directory, FIFO or device is refused`)
	pos, ok := v.parse(fs, args)
	if !ok {
		return exitcode.Usage
	}
	if len(pos) > 0 {
		return v.usage("render takes no arguments, got %q", pos)
	}
	return v.renderTo(in, *out)
}

// renderTo plans and renders in, and writes the config to out ("" or "-": stdout).
func (v *verbs) renderTo(in pfe.Inputs, out string) int {
	p, data, code := v.planAndRender(in)
	if p == nil {
		return code
	}
	if v.asJSON {
		return v.printJSON(p)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(v.stderr, "warning: %s\n", w)
	}
	if out == "" {
		out = atomicfile.Stdout
	}
	changed, err := atomicfile.WriteOrStdout(out, v.stdout, data, 0o644, -1, -1)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return exitcode.Failed
	}
	if out != atomicfile.Stdout {
		fmt.Fprintf(v.stderr, "wrote %s (changed: %t)\n", out, changed)
	}
	return exitcode.OK
}

func (v *verbs) explain(args []string) int {
	pos, ok := v.parse(flag.NewFlagSet("explain", flag.ContinueOnError), args)
	if !ok {
		return exitcode.Usage
	}
	if len(pos) != 1 {
		return v.usage("explain needs one module, option or feature name")
	}
	p, _, code := v.planAndRender(v.in)
	if p == nil {
		return code
	}
	ex := v.tree.Explain(p, pos[0])
	if v.asJSON {
		if ex == nil {
			ex = []pfe.Explanation{}
		}
		if c := v.printJSON(ex); c != exitcode.OK || len(ex) > 0 {
			return c
		}
		return exitcode.Failed
	}
	if len(ex) == 0 {
		fmt.Fprintf(v.stdout, "%s: not mentioned by profile %s, its features, any other feature or environment %s\n", pos[0], p.Profile, p.Environment)
		return exitcode.Failed
	}
	luacfg.WriteExplanations(v.stdout, ex)
	return exitcode.OK
}

func (v *verbs) diff(args []string) int {
	set := flag.NewFlagSet("diff", flag.ContinueOnError)
	against := set.String("against", filepath.Join(v.in.RuntimeDir, "prosody.cfg.lua"), "file Prosody runs")
	pos, ok := v.parse(set, args)
	if !ok {
		return exitcode.Usage
	}
	if len(pos) > 0 {
		return v.usage("diff takes no arguments, got %q", pos)
	}
	_, data, code := v.planAndRender(v.in)
	if data == nil {
		return code
	}
	old, err := os.ReadFile(*against)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(v.stderr, "error: read %s: %v\n", *against, err)
		return exitcode.Failed
	}
	if string(old) == string(data) {
		fmt.Fprintf(v.stderr, "no differences: %s is what the tree renders now\n", *against)
		return exitcode.OK
	}
	if _, err := io.WriteString(v.stdout, luacfg.Diff(*against, "rendered now", old, data, 3)); err != nil {
		return exitcode.Failed
	}
	return exitcode.Failed
}

// validate plans, renders and checks every profile (or only profile) in every environment.
func (v *verbs) validate(args []string, profile string) int {
	if args != nil {
		pos, ok := v.parse(flag.NewFlagSet("validate", flag.ContinueOnError), args)
		if !ok {
			return exitcode.Usage
		}
		if len(pos) > 0 {
			return v.usage("validate takes no arguments (use profiles validate NAME for one profile)")
		}
	}
	if v.credential != nil {
		// validate runs the tree's Lua (prosodyctl check config): as prosody, and
		// in production only from a tree nobody but root can change.
		var warnings []string
		var err error
		v.cred, warnings, err = v.credential()
		for _, w := range warnings {
			fmt.Fprintf(v.stderr, "entrypoint: warning: %s\n", w)
		}
		if err != nil {
			fmt.Fprintf(v.stderr, "entrypoint: %v\n", err)
			return exitcode.Config
		}
	}
	t, code := v.load()
	if t == nil {
		return code
	}
	results, err := initsteps.Validate(context.Background(), t, v.in, profile, os.Environ(), v.cred)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return exitcode.Config
	}
	if v.asJSON {
		v.printJSON(results)
	} else {
		initsteps.WriteValidateResults(v.stdout, results)
	}
	for _, r := range results {
		if !r.OK {
			return exitcode.Failed
		}
	}
	return exitcode.OK
}
