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
	"regexp"
	"sort"
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
		fmt.Fprintf(v.stdout, "profile %s (%s)\n  %s\n  users: %s\n  features:\n", p.Name, p.Source, p.Description, string(p.Users))
		for _, f := range p.Features {
			fmt.Fprintf(v.stdout, "    %s\n", f)
		}
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

var profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (v *pfeVerbs) createProfile(name, from string) int {
	if !profileNameRE.MatchString(name) {
		return v.usage("profile name %q: use a-z, 0-9, _ and - (starting with a letter or digit)", name)
	}
	if v.customDir == "" {
		fmt.Fprintln(v.stderr, "error: no custom config directory is set: profiles are created there")
		return exitConfig
	}
	t, code := v.load()
	if t == nil {
		return code
	}
	if t.Profile(name) != nil && from != name {
		fmt.Fprintf(v.stderr, "error: profile %q already exists (%s); to shadow a built-in one, use --from %s\n", name, t.Profile(name).Source, name)
		return exitFailed
	}
	var p pfe.Profile
	if from != "" {
		src := t.Profile(from)
		if src == nil {
			fmt.Fprintf(v.stderr, "error: --from %q: no such profile; profiles: %s\n", from, strings.Join(t.Profiles(), ", "))
			return exitConfig
		}
		p = *src
		p.Description = "Copy of " + from + ": " + src.Description
	} else {
		tmpl := filepath.Join(v.builtinDir, "templates", "profile.json")
		data, err := os.ReadFile(tmpl)
		if err != nil {
			fmt.Fprintf(v.stderr, "error: read profile template: %v\n", err)
			return exitConfig
		}
		if err := json.Unmarshal(data, &p); err != nil {
			fmt.Fprintf(v.stderr, "error: profile template %s: %v\n", tmpl, err)
			return exitConfig
		}
	}
	p.Name = name
	data, err := json.MarshalIndent(&p, "", "  ")
	if err != nil {
		fmt.Fprintf(v.stderr, "error: encode profile %s: %v\n", name, err)
		return exitFailed
	}
	path := filepath.Join(v.customDir, "profiles", name, "profile.json")
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(v.stderr, "error: %s already exists; edit it instead\n", path)
		return exitFailed
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		fmt.Fprintf(v.stderr, "error: create profile directory: %v\n", err)
		return exitFailed
	}
	if _, err := atomicfile.Write(path, append(data, '\n'), 0o644, -1, -1); err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return exitFailed
	}
	if _, code := v.load(); code != exitOK {
		_ = os.RemoveAll(filepath.Dir(path)) // do not leave a profile that breaks the tree
		return code
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
		fmt.Fprintf(v.stdout, "feature %s (%s, %s)\n  %s\n", f.Name, f.Stability, f.Source, f.Description)
		if f.Unsupported != nil {
			fmt.Fprintf(v.stdout, "  unsupported: %s; instead: %s\n", f.Unsupported.Reason, f.Unsupported.Instead)
		}
		fmt.Fprintf(v.stdout, "  toggles: %s\n", strings.Join(append([]string{pfe.GenericToggle(f.Name)}, f.Toggles...), ", "))
		for _, kv := range [][2]string{{"xeps", strings.Join(f.XEPs, ", ")}, {"requires", strings.Join(f.Requires, ", ")},
			{"conflicts", strings.Join(f.Conflicts, ", ")}, {"packages", strings.Join(f.Packages, ", ")},
			{"community modules", strings.Join(f.CommunityModules, ", ")}} {
			if kv[1] != "" {
				fmt.Fprintf(v.stdout, "  %s: %s\n", kv[0], kv[1])
			}
		}
		for _, pn := range sortedNames(f.Parts) {
			part := f.Parts[pn]
			fmt.Fprintf(v.stdout, "  part %s (default %t; toggles %s): %s\n", pn, part.Default, strings.Join(part.Toggles, ", "), part.Description)
		}
		return exitOK
	}
	type row struct {
		Name        string   `json:"name"`
		Stability   string   `json:"stability"`
		Description string   `json:"description"`
		Toggles     []string `json:"toggles"`
	}
	var rows []row
	for _, n := range t.Features() {
		f := t.Feature(n)
		rows = append(rows, row{n, f.Stability, f.Description, append([]string{pfe.GenericToggle(n)}, f.Toggles...)})
	}
	if v.asJSON {
		return v.printJSON(rows)
	}
	for _, r := range rows {
		fmt.Fprintf(v.stdout, "%-28s %-12s %s\n", r.Name, r.Stability, r.Description)
	}
	return exitOK
}

func sortedNames[V any](m map[string]V) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
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
	for _, e := range ex {
		state := "OUT"
		if e.In {
			state = "IN "
		}
		where := e.Section
		if where == "" {
			where = "plan"
		}
		fmt.Fprintf(v.stdout, "%s %s %s in %s\n", state, e.Kind, e.Name, where)
		if e.Value != nil {
			if lit, err := luacfg.Value(e.Value); err == nil {
				fmt.Fprintf(v.stdout, "    value: %s\n", lit)
			}
		}
		for _, w := range e.Why {
			fmt.Fprintf(v.stdout, "    because: %s\n", w)
		}
	}
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

// validateResult is one profile × environment of validate.
type validateResult struct {
	Profile     string        `json:"profile"`
	Environment string        `json:"environment"`
	OK          bool          `json:"ok"`
	Error       string        `json:"error,omitempty"`
	Warnings    []string      `json:"warnings,omitempty"`
	Missing     []pfe.Missing `json:"missing_modules,omitempty"`
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
	profiles := t.Profiles()
	if profile != "" {
		if t.Profile(profile) == nil {
			fmt.Fprintf(v.stderr, "error: profile %q does not exist; profiles: %s\n", profile, strings.Join(profiles, ", "))
			return exitConfig
		}
		profiles = []string{profile}
	}
	tmp, err := os.MkdirTemp("", "pfe-validate-")
	if err != nil {
		fmt.Fprintf(v.stderr, "error: create temporary directory: %v\n", err)
		return exitFailed
	}
	defer os.RemoveAll(tmp)
	// The checkers run as prosody: the rendered files are root's, readable
	// by prosody's group.
	if err := atomicfile.MkdirOwned(tmp, 0o750, -1, v.gid()); err != nil {
		fmt.Fprintf(v.stderr, "error: %v\n", err)
		return exitFailed
	}
	var results []validateResult
	failed := false
	for _, prof := range profiles {
		for _, env := range t.Environments() {
			r := v.validateOne(t, prof, env, tmp)
			failed = failed || !r.OK
			results = append(results, r)
		}
	}
	if v.asJSON {
		v.printJSON(results)
	} else {
		for _, r := range results {
			status := "ok  "
			if !r.OK {
				status = "FAIL"
			}
			fmt.Fprintf(v.stdout, "%s %s × %s\n", status, r.Profile, r.Environment)
			if r.Error != "" {
				fmt.Fprintf(v.stdout, "     %s\n", strings.ReplaceAll(r.Error, "\n", "\n     "))
			}
			for _, m := range r.Missing {
				fmt.Fprintf(v.stdout, "     missing module %s: %s\n", m.Module, m.Hint)
			}
			for _, w := range r.Warnings {
				fmt.Fprintf(v.stdout, "     warning: %s\n", w)
			}
		}
	}
	if failed {
		return exitFailed
	}
	return exitOK
}

// gid is the group validate's files are readable by: prosody's, -1 without cred.
func (v *pfeVerbs) gid() int {
	if v.cred == nil {
		return -1
	}
	return int(v.cred.GID)
}

func (v *pfeVerbs) validateOne(t *pfe.Tree, prof, env, tmp string) validateResult {
	r := validateResult{Profile: prof, Environment: env}
	in := v.in
	in.Profile, in.Environment = prof, env
	p, err := t.Plan(in)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	data, err := luacfg.Render(p)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	path := filepath.Join(tmp, prof+"-"+env+".cfg.lua")
	if _, err := atomicfile.Write(path, data, 0o640, -1, v.gid()); err != nil {
		r.Error = err.Error()
		return r
	}
	// As the check stage does: prosodyctl gets no PROSODY_* variable, so no
	// secret (a nil Env would hand it the whole environment), and runs as
	// prosody, so Lua in the tree never runs as root.
	r.Warnings, err = luacfg.Check(context.Background(), path, luacfg.CheckOptions{
		Env: initsteps.WithoutProsodyVars(os.Environ()), Cred: v.cred})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Missing = pfe.MissingModules(p, pfe.ModuleDirs(p))
	r.OK = len(r.Missing) == 0
	return r
}
