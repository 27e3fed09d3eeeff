package pfecli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

const (
	testTree = "../../pkg/pfe/testdata/tree"
	realTree = "../../config"
)

func verbInputs(t *testing.T) pfe.Inputs {
	return pfe.Inputs{
		Profile: "full", Environment: "production", Domains: []string{"example.com"},
		Admins: []string{"admin@example.com"}, Storage: "sqlite", C2SPort: 5222, S2SPort: 5269,
		HTTPPort: 5280, HTTPSPort: 5281, UploadSizeLimit: 1 << 20, FastTokenTTL: time.Hour,
		DataDir: "/var/lib/prosody", RuntimeDir: t.TempDir(), CertsDir: "/etc/prosody/certs",
	}
}

func runVerb(t *testing.T, in pfe.Inputs, builtin, custom string, verb string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(verb, args, Config{Inputs: in, BuiltinDir: builtin, CustomDir: custom}, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVerbsUsageAndConfigErrors(t *testing.T) {
	in := verbInputs(t)
	for _, tc := range []struct {
		verb string
		args []string
		code int
		want string
	}{
		{"frobnicate", nil, 2, `unknown verb "frobnicate"`},
		{"render", []string{"extra"}, 2, "render takes no arguments"},
		{"render", []string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"profiles", []string{"show"}, 2, "wrong subcommand"},
		{"explain", nil, 2, "explain needs one"},
		{"profiles", []string{"show", "nope"}, 78, `profile "nope" does not exist`},
		{"features", []string{"show", "nope/x"}, 78, `feature "nope/x" does not exist`},
		{"render", []string{"--profile", "fulll"}, 78, "did you mean full?"},
	} {
		code, _, stderr := runVerb(t, in, testTree, "", tc.verb, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s %q: exit %d, stderr %q; want exit %d and %q", tc.verb, tc.args, code, stderr, tc.code, tc.want)
		}
	}
	bad := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bad, "core"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "core", "global.json"), []byte(`{"globl": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runVerb(t, in, bad, "", "validate"); code != 78 || !strings.Contains(stderr, `unknown field "globl"`) {
		t.Errorf("broken tree: exit %d, stderr %q; want 78 naming the key", code, stderr)
	}
}

func TestVerbsListShowExplain(t *testing.T) {
	in := verbInputs(t)
	code, out, _ := runVerb(t, in, testTree, "", "profiles", "list")
	if code != 0 || !strings.Contains(out, "full") || !strings.Contains(out, "small") {
		t.Errorf("profiles list: exit %d, %q", code, out)
	}
	code, out, _ = runVerb(t, in, testTree, "", "features", "list", "--json")
	var rows []struct{ Name string }
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 8 {
		t.Errorf("features list --json: exit %d, %d rows from %q", code, len(rows), out)
	}
	code, out, _ = runVerb(t, in, testTree, "", "features", "show", "performance/clustering")
	if code != 0 || !strings.Contains(out, "unsupported: Prosody is a single process") || !strings.Contains(out, "PROSODY_FEATURES_PERFORMANCE_CLUSTERING") {
		t.Errorf("features show: exit %d, %q", code, out)
	}
	code, out, _ = runVerb(t, in, testTree, "", "explain", "archive_expires_after")
	if code != 0 || !strings.Contains(out, `value: "1y"`) || !strings.Contains(out, "because: environment production") {
		t.Errorf("explain: exit %d, %q", code, out)
	}
	in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH": "false"}
	code, out, _ = runVerb(t, in, testTree, "", "explain", "mod_cloud_notify", "--json")
	var ex []pfe.Explanation
	if code != 0 || json.Unmarshal([]byte(out), &ex) != nil || len(ex) != 1 || ex[0].In {
		t.Errorf("explain --json of a toggled-off module: exit %d, %q", code, out)
	}
	if code, out, _ = runVerb(t, in, testTree, "", "explain", "nothing_like_it"); code != 1 || !strings.Contains(out, "not mentioned") {
		t.Errorf("explain unknown: exit %d, %q", code, out)
	}
}

func TestVerbsRenderAndDiff(t *testing.T) {
	in := verbInputs(t)
	code, out, _ := runVerb(t, in, testTree, "", "render", "--profile", "small", "--environment", "development")
	if code != 0 || !strings.Contains(out, "-- profile: small") || !strings.Contains(out, `VirtualHost "example.com"`) {
		t.Fatalf("render to stdout: exit %d, %q", code, out)
	}
	running := filepath.Join(in.RuntimeDir, "prosody.cfg.lua")
	if code, _, stderr := runVerb(t, in, testTree, "", "render", "--out", running); code != 0 || !strings.Contains(stderr, "changed: true") {
		t.Fatalf("render --out: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runVerb(t, in, testTree, "", "render", "--out", running); code != 0 || !strings.Contains(stderr, "changed: false") {
		t.Errorf("second render --out: exit %d, %q", code, stderr)
	}
	if code, _, _ := runVerb(t, in, testTree, "", "diff"); code != 0 {
		t.Errorf("diff against the same render: exit %d, want 0", code)
	}
	in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH": "false"}
	code, out, _ = runVerb(t, in, testTree, "", "diff", "--against", running)
	if code != 1 || !strings.Contains(out, "--- "+running) || !strings.Contains(out, `-	"cloud_notify"; -- feature mobile/push (profile full)`) {
		t.Errorf("diff after a toggle: exit %d, %q", code, out)
	}
	code, out, _ = runVerb(t, in, testTree, "", "render", "--json")
	var p pfe.Plan
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.Profile != "full" {
		t.Errorf("render --json: exit %d", code)
	}
}

func TestVerbsProfilesCreate(t *testing.T) {
	in := verbInputs(t)
	custom := filepath.Join(t.TempDir(), "custom")
	code, out, stderr := runVerb(t, in, realTree, custom, "profiles", "create", "team")
	path := filepath.Join(custom, "profiles", "team", "profile.json")
	if code != 0 || !strings.Contains(out, path) {
		t.Fatalf("profiles create: exit %d, %q %q", code, out, stderr)
	}
	if code, _, stderr = runVerb(t, in, realTree, custom, "profiles", "create", "team"); code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("second create: exit %d, %q", code, stderr)
	}
	if code, _, _ = runVerb(t, in, realTree, custom, "profiles", "create", "Bad Name"); code != 2 {
		t.Errorf("bad name: exit %d, want 2", code)
	}
	if code, _, stderr = runVerb(t, in, realTree, custom, "profiles", "create", "copy", "--from", "standard"); code != 0 {
		t.Fatalf("create --from: exit %d, %q", code, stderr)
	}
	code, out, _ = runVerb(t, in, realTree, custom, "profiles", "show", "copy", "--json")
	var p pfe.Profile
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.Name != "copy" || len(p.Features) == 0 {
		t.Errorf("show copy: exit %d, %q", code, out)
	}
	in.Profile = "team"
	if code, out, _ = runVerb(t, in, realTree, custom, "profiles", "validate", "team"); code != 0 {
		t.Errorf("profiles validate team: exit %d\n%s", code, out)
	}
}

func TestVerbValidate(t *testing.T) {
	in := verbInputs(t)
	code, out, stderr := runVerb(t, in, testTree, "", "validate")
	if code != 0 || strings.Count(out, "ok   ") != 4 {
		t.Errorf("validate test tree: exit %d\n%s%s", code, out, stderr)
	}
	in.Toggles = map[string]string{"PROSODY_FEATURES_MOBILE_BATTERY_SAVER": "true"}
	code, out, _ = runVerb(t, in, testTree, "", "validate", "--json")
	var results []initsteps.ValidateResult
	if code != 1 || json.Unmarshal([]byte(out), &results) != nil || len(results) != 4 || results[0].OK {
		t.Errorf("validate with a conflict: exit %d\n%s", code, out)
	}
	code, out, stderr = runVerb(t, verbInputs(t), realTree, "", "validate")
	if code != 0 {
		t.Errorf("validate the product's config tree: exit %d\n%s%s", code, out, stderr)
	}
	// The design's profile manager: validate with no name checks PROSODY_PROFILE
	// ("full" here), --all every profile, and check is validate.
	in = verbInputs(t)
	for _, tc := range []struct {
		args     []string
		profiles []string
	}{
		{[]string{"profiles", "validate"}, []string{"full"}},
		{[]string{"profiles", "check", "small"}, []string{"small"}},
		{[]string{"profiles", "validate", "--all"}, []string{"full", "small"}},
	} {
		code, out, stderr := runVerb(t, in, testTree, "", tc.args[0], append(tc.args[1:], "--json")...)
		var res []initsteps.ValidateResult
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
			t.Errorf("%q: exit %d\n%s%s", tc.args, code, out, stderr)
			continue
		}
		var got []string
		for _, r := range res {
			if !slices.Contains(got, r.Profile) {
				got = append(got, r.Profile)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.profiles) {
			t.Errorf("%q validated %v, want %v", tc.args, got, tc.profiles)
		}
	}
	if code, _, stderr := runVerb(t, in, testTree, "", "profiles", "validate", "small", "--all"); code != 2 {
		t.Errorf("validate NAME --all: exit %d %s, want 2", code, stderr)
	}
}

// render --out never replaces what it did not create: a FIFO (which would
// block a plain open for ever) or a directory is refused at once, and "-"
// is standard output.
func TestRenderOutRefusesNonRegularTargets(t *testing.T) {
	in := verbInputs(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{fifo, dir} {
		done := make(chan struct{})
		var code int
		var stderr string
		go func() { code, _, stderr = runVerb(t, in, testTree, "", "render", "--out", target); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("render --out %s blocked", target)
		}
		if code != exitcode.Failed || !strings.Contains(stderr, target) || !strings.Contains(stderr, "not a regular file") {
			t.Errorf("render --out %s: exit %d, %q; want %d naming it as not a regular file", target, code, stderr, exitcode.Failed)
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi, err)
	}
	code, out, _ := runVerb(t, in, testTree, "", "render", "--out", "-")
	if code != exitcode.OK || !strings.Contains(out, `VirtualHost "example.com"`) {
		t.Errorf("render --out -: exit %d, %q; want the config on stdout", code, out)
	}
}

// explain answers what the README and the design ask of it: which options MAM runs
// with, why the admin shell is there and how to turn it off, and, for a feature that
// cannot be enabled, what to use instead, never a toggle that exits 78.
func TestExplainAnswersTheDesignsQuestions(t *testing.T) {
	in := verbInputs(t)
	in.Profile = "standard"
	for _, tc := range []struct {
		name string
		want []string
		not  string
	}{
		{"mam", []string{"IN  module mam in global", `with: archive_expires_after = "1y"`, `with: default_archive_policy = "roster"`}, ""},
		{"admin/shell", []string{"note: The admin shell is local only", "srwxr-xr-x prosody:prosody", "config:reload()", "PROSODY_FEATURES_ADMIN_SHELL=false", "needs a restart"}, ""},
		{"authentication/mfa", []string{"cannot be enabled", "instead: "}, "=true"},
	} {
		code, out, stderr := runVerb(t, in, realTree, "", "explain", tc.name)
		if code != 0 {
			t.Errorf("explain %s: exit %d %s", tc.name, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("explain %s lacks %q:\n%s", tc.name, w, out)
			}
		}
		if tc.not != "" && strings.Contains(out, tc.not) {
			t.Errorf("explain %s suggests %q:\n%s", tc.name, tc.not, out)
		}
	}
}
