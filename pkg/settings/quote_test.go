package settings

import (
	"errors"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// TestProblemsQuoteWhatTheyEcho: values and names from the environment that hold a terminal
// escape or a line break (a forged log line) are reported quoted, never raw, and every one of
// them is a problem of its variable. The old code printed unknown and toggle names raw,
// accepted such paths (which then reached other packages' messages raw) and an admin
// localpart with a C1 control character.
func TestProblemsQuoteWhatTheyEcho(t *testing.T) {
	const evil = "x\x1b[31m\nlevel=error msg=forged"
	const evilName = "x\x1b[31m\nforged" // a name cannot hold "="
	environ := []string{
		"PROSODY_DOMAIN=example.org",
		"PROSODY_PROFILE=" + evil,
		"PROSODY_STORAGE=" + evil,
		"PROSODY_FEATURES=+web/" + evil,
		"PROSODY_DATA_DIR=/var/lib/" + evil,
		"PROSODY_DB_PASSWORD_FILE=/run/secrets/" + evil,
		"PROSODY_ADMINS=\u009b31m@example.org",
		"PROSODY_TYPO_" + evilName + "=1",
		"PROSODY_FEATURES_" + evilName + "=maybe",
	}
	_, _, err := Load(environ)
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load = %v, want *Problems", err)
	}
	for _, p := range ps.List {
		line := p.String()
		if strings.ContainsAny(line, "\x1b\n\u009b") {
			t.Errorf("problem holds a raw escape or line break: %q", line)
		}
	}
	msg := err.Error()
	for _, want := range []string{
		`PROSODY_PROFILE="x\x1b[31m\nlevel=error msg=forged": not a profile name`,
		`PROSODY_STORAGE="x\x1b[31m\nlevel=error msg=forged": not a storage backend`,
		`PROSODY_FEATURES="+web/x\x1b[31m\nlevel=error msg=forged": not a feature name`,
		`PROSODY_DATA_DIR="/var/lib/x\x1b[31m\nlevel=error msg=forged": has a control character`,
		`PROSODY_DB_PASSWORD_FILE="/run/secrets/x\x1b[31m\nlevel=error msg=forged": has a control character`,
		`PROSODY_ADMINS="\u009b31m@example.org": localpart has '\u009b'`,
		`"PROSODY_TYPO_x\x1b[31m\nforged": unknown variable`,
		`"PROSODY_FEATURES_x\x1b[31m\nforged"="maybe": not a boolean`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %s:\n%s", want, msg)
		}
	}
}

// TestProfileNameRule: PROSODY_PROFILE accepts exactly the names pfe.CheckName accepts, the
// rule `profiles create` and the config tree use (the old code refused my_team, which
// `profiles create my_team` made), and PROSODY_FEATURES the feature names it accepts.
func TestProfileNameRule(t *testing.T) {
	for _, name := range []string{"my_team", "team", "my-team", "a0", "My_Team", "_x", "-x", "a.b", "a/b", strings.Repeat("a", 65)} {
		_, _, err := Load([]string{"PROSODY_PROFILE=" + name})
		refused := err != nil && strings.Contains(err.Error(), "PROSODY_PROFILE")
		if want := pfe.CheckName("profile", name) != nil; refused != want {
			t.Errorf("PROSODY_PROFILE=%s: refused %v, pfe.CheckName refuses %v (%v)", name, refused, want, err)
		}
		if refused && !strings.Contains(err.Error(), pfe.NameRule) {
			t.Errorf("PROSODY_PROFILE=%s: %v does not say what is accepted", name, err)
		}
		gerr := Generate(&strings.Builder{}, name, "production")
		if want := pfe.CheckName("profile", name) != nil; (gerr != nil) != want {
			t.Errorf("Generate(%q): %v, pfe.CheckName refuses %v", name, gerr, want)
		}
	}
	for _, name := range []string{"web/admin", "my_group/my-feature", "admin", "web/Admin", "a/b/c"} {
		_, _, err := Load([]string{"PROSODY_FEATURES=+" + name})
		refused := err != nil && strings.Contains(err.Error(), "PROSODY_FEATURES")
		if want := pfe.CheckName("feature", name) != nil; refused != want {
			t.Errorf("PROSODY_FEATURES=+%s: refused %v, pfe.CheckName refuses %v (%v)", name, refused, want, err)
		}
	}
}
