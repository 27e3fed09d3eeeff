package cmdroute

import (
	"flag"
	"io"
	"slices"
	"testing"
)

// Every row of the README's command table, as a user types it after the image name.
func TestClassify(t *testing.T) {
	verbs := func(name string) bool { return name == "render" || name == "backup" || name == "healthcheck" }
	for _, tc := range []struct {
		name  string
		argv0 string
		args  []string
		want  Kind
		rest  []string
	}{
		{"default command", "entrypoint", nil, Server, nil},
		{"prosody", "entrypoint", []string{"prosody"}, Server, []string{}},
		{"prosody with flags", "entrypoint", []string{"prosody", "-v"}, Server, []string{"-v"}},
		{"flags go to prosody", "entrypoint", []string{"--verbose"}, Server, []string{"--verbose"}},
		{"short flag goes to prosody", "entrypoint", []string{"-D"}, Server, []string{"-D"}},
		{"verb", "entrypoint", []string{"render", "--out", "-"}, Verb, []string{"render", "--out", "-"}},
		{"help", "entrypoint", []string{"--help"}, Help, nil},
		{"help word", "entrypoint", []string{"help"}, Help, nil},
		{"version", "entrypoint", []string{"version"}, Version, nil},
		{"explicit prosodyctl", "entrypoint", []string{"prosodyctl", "check", "config"}, Prosodyctl, []string{"check", "config"}},
		{"register passes through", "entrypoint", []string{"register", "alice", "example.com", "pw"}, Prosodyctl, []string{"register", "alice", "example.com", "pw"}},
		{"adduser", "entrypoint", []string{"adduser", "alice@example.com"}, Prosodyctl, []string{"adduser", "alice@example.com"}},
		{"check", "entrypoint", []string{"check"}, Prosodyctl, []string{"check"}},
		{"shell", "entrypoint", []string{"shell"}, Prosodyctl, []string{"shell"}},
		{"about", "entrypoint", []string{"about"}, Prosodyctl, []string{"about"}},
		{"cert", "entrypoint", []string{"cert", "import", "/x"}, Prosodyctl, []string{"cert", "import", "/x"}},
		{"module command", "entrypoint", []string{"mod_invites", "generate", "example.com"}, Prosodyctl, []string{"mod_invites", "generate", "example.com"}},
		{"daemon command refused", "entrypoint", []string{"start"}, Usage, nil},
		{"status refused", "entrypoint", []string{"status"}, Usage, nil},
		{"plain program", "entrypoint", []string{"sh", "-c", "echo hi"}, Plain, []string{"sh", "-c", "echo hi"}},
		{"double dash", "entrypoint", []string{"--", "register"}, Plain, []string{"register"}},
		{"double dash alone", "entrypoint", []string{"--"}, Usage, nil},
		{"absolute program", "entrypoint", []string{"/bin/true"}, Plain, []string{"/bin/true"}},
		{"wrapper in PATH", "/usr/local/bin/prosodyctl", []string{"shell"}, LiveProsodyctl, []string{"shell"}},
		{"wrapper with no argument", "prosodyctl", nil, LiveProsodyctl, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.argv0, tc.args, verbs)
			if got.Kind != tc.want {
				t.Fatalf("Classify(%q, %q).Kind = %d, want %d (%+v)", tc.argv0, tc.args, got.Kind, tc.want, got)
			}
			if tc.want == Usage {
				if got.Reason == "" {
					t.Errorf("a usage route without a reason")
				}
				return
			}
			if len(got.Args) != len(tc.rest) || !slices.Equal(got.Args, tc.rest) {
				t.Errorf("Args = %q, want %q", got.Args, tc.rest)
			}
		})
	}
}

// The commands passed through are prosodyctl's own: each is in the installed prosodyctl's
// command table (a renamed or removed command would be run as a program and fail).
func TestProsodyctlCommandsAreReal(t *testing.T) {
	data := prosodyctlSource(t)
	for _, c := range append(ProsodyctlCommands(), daemonCommands()...) {
		if !containsCommand(data, c) {
			t.Errorf("prosodyctl has no command %q", c)
		}
	}
}

// A verb's flags may come before, between or after its arguments (`profiles
// show NAME --json`, `render --out FILE --profile P`); the arguments keep their order.
func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		pos      []string
		json     bool
		out      string
		wantsErr bool
	}{
		{nil, nil, false, "", false},
		{[]string{"show", "full", "--json"}, []string{"show", "full"}, true, "", false},
		{[]string{"--json", "show", "--out", "f", "full"}, []string{"show", "full"}, true, "f", false},
		{[]string{"a", "--", "--json"}, []string{"a", "--json"}, false, "", false},
		{[]string{"a", "--bogus"}, nil, false, "", true},
	} {
		fs := flag.NewFlagSet("verb", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		out := fs.String("out", "", "")
		pos, err := ParseInterspersed(fs, tc.args)
		if (err != nil) != tc.wantsErr || !slices.Equal(pos, tc.pos) || *asJSON != tc.json || *out != tc.out {
			t.Errorf("%q: positional %q, json %t, out %q, err %v; want %q, %t, %q, error %t", tc.args, pos, *asJSON, *out, err, tc.pos, tc.json, tc.out, tc.wantsErr)
		}
	}
}
