package adminsock

import (
	"errors"
	"maps"
	"os/exec"
	"slices"
	"testing"
)

// LuaQuote is checked against the real Lua 5.4 interpreter: the literal must evaluate to
// exactly the input bytes.
func TestLuaQuoteRoundTripsThroughLua(t *testing.T) {
	lua, err := exec.LookPath("lua5.4")
	if err != nil {
		t.Fatalf("lua5.4 not found: install the Debian package lua5.4: %v", err)
	}
	for _, s := range []string{
		"", "uptime", `a"b`, `back\slash`, "new\nline", "nul\x00byte", "tab\tand\r", "\x1b[31m",
		`") os.exit(1) --`, "]]", "digits after escape: \x01" + "23", "utf-8: é ☃", "del\x7f",
	} {
		out, err := exec.Command(lua, "-e", "io.write("+LuaQuote(s)+")").Output()
		if err != nil {
			t.Errorf("lua rejected LuaQuote(%q) = %s: %v", s, LuaQuote(s), err)
			continue
		}
		if string(out) != s {
			t.Errorf("LuaQuote(%q) = %s evaluates to %q", s, LuaQuote(s), out)
		}
	}
}

func TestParseModuleList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lines   []string
		want    []string
		wantErr bool
	}{
		{"modules", []string{"localhost:", "    c2s", "    admin_shell", "    tls (warn: no certificate)"},
			[]string{"admin_shell", "c2s", "tls"}, false},
		{"global", []string{"Global:", "    admin_socket"}, []string{"admin_socket"}, false},
		{"none loaded", []string{"x.example:", "    No modules loaded"}, []string{}, false},
		{"unknown host", []string{"x.example:", "    Host not found"}, nil, true},
		{"no output", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseModuleList("module:list()", tc.lines)
			var cmdErr *CommandError
			if tc.wantErr != errors.As(err, &cmdErr) {
				t.Fatalf("err = %v, want CommandError: %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("modules = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseModuleLists(t *testing.T) {
	lines := []string{"Global:", "    admin_socket", "    cron", "conference.localhost:", "    No modules loaded",
		"localhost:", "    c2s", "    tls (warn: no certificate)", "nowhere.localhost:", "    Host not found"}
	got, err := parseModuleLists(lines)
	if err != nil {
		t.Fatalf("parseModuleLists: %v", err)
	}
	want := map[string][]string{"*": {"admin_socket", "cron"}, "conference.localhost": {}, "localhost": {"c2s", "tls"}}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("parseModuleLists = %q, want %q", got, want)
	}
	if _, err := parseModuleLists([]string{"    c2s"}); err == nil {
		t.Errorf("a module line without a host header was accepted")
	}
}

func TestCommandNameHidesArguments(t *testing.T) {
	for cmd, want := range map[string]string{
		`user:create("a@b", "hunter2")`: "user:create",
		"config:reload()":               "config:reload",
		" server:version() ":            "server:version",
	} {
		if got := commandName(cmd); got != want {
			t.Errorf("commandName(%q) = %q, want %q", cmd, got, want)
		}
	}
}
