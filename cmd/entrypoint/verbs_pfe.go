package main

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

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// pfeUsage is printed for usage errors.
const pfeUsage = `usage:
  entrypoint profiles list [--json] | show NAME [--json] | create NAME [--from PROFILE] | validate [NAME] [--json]
  entrypoint features list [--json] | show NAME [--json]
  entrypoint render [--profile P] [--environment E] [--out FILE] [--json]
  entrypoint explain MODULE|OPTION|FEATURE [--json]
  entrypoint diff [--against FILE]
  entrypoint validate [--json]`

// runPFEVerb runs one PFE verb (profiles, features, render, explain, diff, validate) with
// its arguments. in holds the plan inputs from the settings; builtinDir is the config tree,
// customDir the user's tree (may be missing). It writes results to stdout, problems to
// stderr, and returns the exit code: 0 ok, 1 differences or failed validation, 2 usage,
// 78 configuration errors. It reads no environment variables.
func runPFEVerb(verb string, args []string, in pfe.Inputs, builtinDir, customDir string, stdout, stderr io.Writer) int {
	v := pfeVerbs{in: in, builtinDir: builtinDir, customDir: customDir}
	return v.run(verb, args, stdout, stderr)
}

// run is runPFEVerb with the verbs' settings in v (cred among them).
func (v pfeVerbs) run(verb string, args []string, stdout, stderr io.Writer) int {
	v.stdout, v.stderr = stdout, stderr
	return v.dispatch(verb, args)
}

func (v *pfeVerbs) dispatch(verb string, args []string) int {
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
	}
	return v.usage("unknown verb %q", verb)
}

type pfeVerbs struct {
	in                    pfe.Inputs
	builtinDir, customDir string
	// prepare, when set, is called by validate before it checks anything: it
	// sets cred, or returns the non-zero exit code that ends the verb.
	prepare func(v *pfeVerbs) int
	// cred is who validate runs the checkers as (prosody); nil: the entrypoint.
	cred           *supervise.Credential
	stdout, stderr io.Writer
	asJSON         bool
}

func (v *pfeVerbs) usage(format string, a ...any) int {
	fmt.Fprintf(v.stderr, "error: "+format+"\n%s\n", append(a, pfeUsage)...)
	return exitUsage
}

// parse parses flags anywhere among args and returns the positional arguments.
func (v *pfeVerbs) parse(fs *flag.FlagSet, args []string) ([]string, bool) {
	fs.SetOutput(io.Discard)
	fs.BoolVar(&v.asJSON, "json", false, "print JSON")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			v.usage("%s: %v", fs.Name(), err)
			return nil, false
		}
		if fs.NArg() == 0 {
			return pos, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (v *pfeVerbs) load() (*pfe.Tree, int) {
	t, err := pfe.Load(v.builtinDir, v.customDir)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return nil, exitConfig
	}
	return t, exitOK
}

func (v *pfeVerbs) printJSON(x any) int {
	enc := json.NewEncoder(v.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(x); err != nil {
		fmt.Fprintf(v.stderr, "error: encode JSON: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func (v *pfeVerbs) profiles(args []string) int {
	fs := flag.NewFlagSet("profiles", flag.ContinueOnError)
	from := fs.String("from", "", "profile to copy")
	pos, ok := v.parse(fs, args)
	if !ok {
		return exitUsage
	}
	if len(pos) == 0 {
		return v.usage("profiles needs a subcommand")
	}
	switch sub, rest := pos[0], pos[1:]; {
	case sub == "list" && len(rest) == 0:
		t, code := v.load()
		if t == nil {
			return code
		}
		var list []*pfe.Profile
		for _, n := range t.Profiles() {
			list = append(list, t.Profile(n))
		}
		if v.asJSON {
			return v.printJSON(list)
		}
		for _, p := range list {
			fmt.Fprintf(v.stdout, "%-16s %2d features  %s\n", p.Name, len(p.Features), p.Description)
		}
		return exitOK
	case sub == "show" && len(rest) == 1:
		t, code := v.load()
		if t == nil {
			return code
		}
		p := t.Profile(rest[0])
		if p == nil {
			fmt.Fprintf(v.stderr, "error: profile %q does not exist; profiles: %s\n", rest[0], strings.Join(t.Profiles(), ", "))
			return exitConfig
		}
		if v.asJSON {
			return v.printJSON(p)
		}
		p.WriteText(v.stdout)
		return exitOK
	case sub == "create" && len(rest) == 1:
		return v.createProfile(rest[0], *from)
	case sub == "validate" && len(rest) <= 1:
		name := ""
		if len(rest) == 1 {
			name = rest[0]
		}
		return v.validate(nil, name)
	}
	return v.usage("profiles %s: wrong subcommand or arguments", strings.Join(pos, " "))
}

func (v *pfeVerbs) createProfile(name, from string) int {
	path, err := pfe.CreateProfile(v.builtinDir, v.customDir, name, from)
	switch {
	case errors.Is(err, pfe.ErrBadName):
		return v.usage("%v", err)
	case errors.Is(err, pfe.ErrExists):
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return exitFailed
	case err != nil:
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return exitConfig
	}
	fmt.Fprintf(v.stdout, "created profile %s at %s\n", name, path)
	return exitOK
}

func (v *pfeVerbs) features(args []string) int {
	pos, ok := v.parse(flag.NewFlagSet("features", flag.ContinueOnError), args)
	if !ok {
		return exitUsage
	}
	if len(pos) == 0 || !(pos[0] == "list" && len(pos) == 1 || pos[0] == "show" && len(pos) == 2) {
		return v.usage("features: use list or show NAME")
	}
	t, code := v.load()
	if t == nil {
		return code
	}
	if pos[0] == "show" {
		f := t.Feature(pos[1])
		if f == nil {
			fmt.Fprintf(v.stderr, "error: feature %q does not exist; see entrypoint features list\n", pos[1])
			return exitConfig
		}
		if v.asJSON {
			return v.printJSON(f)
		}
		f.WriteText(v.stdout)
		return exitOK
	}
	rows := t.FeatureSummaries()
	if v.asJSON {
		return v.printJSON(rows)
	}
	for _, r := range rows {
		fmt.Fprintf(v.stdout, "%-28s %-12s %s\n", r.Name, r.Stability, r.Description)
	}
	return exitOK
}

// planAndRender loads the tree, plans in and renders it.
func (v *pfeVerbs) planAndRender(in pfe.Inputs) (*pfe.Plan, []byte, int) {
	t, code := v.load()
	if t == nil {
		return nil, nil, code
	}
	p, err := t.Plan(in)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: plan profile %s, environment %s:\n%v\n", in.Profile, in.Environment, err)
		return nil, nil, exitConfig
	}
	out, err := luacfg.Render(p)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return nil, nil, exitConfig
	}
	return p, out, exitOK
}

func (v *pfeVerbs) render(args []string) int {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	in := v.in
	fs.StringVar(&in.Profile, "profile", in.Profile, "profile")
	fs.StringVar(&in.Environment, "environment", in.Environment, "environment")
	out := fs.String("out", "", `write here instead of stdout ("-" is stdout); a directory, FIFO or device is refused`)
	pos, ok := v.parse(fs, args)
	if !ok {
		return exitUsage
	}
	if len(pos) > 0 {
		return v.usage("render takes no arguments, got %q", pos)
	}
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
	if *out == "" {
		*out = atomicfile.Stdout
	}
	changed, err := atomicfile.WriteOrStdout(*out, v.stdout, data, 0o644, -1, -1)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return exitFailed
	}
	if *out != atomicfile.Stdout {
		fmt.Fprintf(v.stderr, "wrote %s (changed: %t)\n", *out, changed)
	}
	return exitOK
}

func (v *pfeVerbs) explain(args []string) int {
	pos, ok := v.parse(flag.NewFlagSet("explain", flag.ContinueOnError), args)
	if !ok {
		return exitUsage
	}
	if len(pos) != 1 {
		return v.usage("explain needs one module, option or feature name")
	}
	p, _, code := v.planAndRender(v.in)
	if p == nil {
		return code
	}
	ex := p.Explain(pos[0])
	if v.asJSON {
		if ex == nil {
			ex = []pfe.Explanation{}
		}
		if c := v.printJSON(ex); c != exitOK || len(ex) > 0 {
			return c
		}
		return exitFailed
	}
	if len(ex) == 0 {
		fmt.Fprintf(v.stdout, "%s: not mentioned by profile %s, its features, any other feature or environment %s\n", pos[0], p.Profile, p.Environment)
		return exitFailed
	}
	luacfg.WriteExplanations(v.stdout, ex)
	return exitOK
}

func (v *pfeVerbs) diff(args []string) int {
	set := flag.NewFlagSet("diff", flag.ContinueOnError)
	against := set.String("against", filepath.Join(v.in.RuntimeDir, "prosody.cfg.lua"), "file Prosody runs")
	pos, ok := v.parse(set, args)
	if !ok {
		return exitUsage
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
		return exitFailed
	}
	if string(old) == string(data) {
		fmt.Fprintf(v.stderr, "no differences: %s is what the tree renders now\n", *against)
		return exitOK
	}
	if _, err := io.WriteString(v.stdout, luacfg.Diff(*against, "rendered now", old, data, 3)); err != nil {
		return exitFailed
	}
	return exitFailed
}

// validate plans, renders and checks every profile (or only profile) in every environment.
func (v *pfeVerbs) validate(args []string, profile string) int {
	if args != nil {
		pos, ok := v.parse(flag.NewFlagSet("validate", flag.ContinueOnError), args)
		if !ok {
			return exitUsage
		}
		if len(pos) > 0 {
			return v.usage("validate takes no arguments (use profiles validate NAME for one profile)")
		}
	}
	if v.prepare != nil {
		if code := v.prepare(v); code != exitOK {
			return code
		}
	}
	t, code := v.load()
	if t == nil {
		return code
	}
	results, err := initsteps.Validate(context.Background(), t, v.in, profile, os.Environ(), v.cred)
	if err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return exitConfig
	}
	if v.asJSON {
		v.printJSON(results)
	} else {
		initsteps.WriteValidateResults(v.stdout, results)
	}
	for _, r := range results {
		if !r.OK {
			return exitFailed
		}
	}
	return exitOK
}
