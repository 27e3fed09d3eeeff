package luacfg_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

func needLua(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("lua5.4")
	if err != nil {
		t.Fatalf("lua5.4 is needed as the oracle of the encoder: install the Debian package lua5.4")
	}
	return path
}

// luaEval runs one lua5.4 process that evaluates every literal and writes back its length
// and bytes, and returns what Lua read.
func luaEval(t testing.TB, literals []string) [][]byte {
	t.Helper()
	lua := needLua(t)
	var script strings.Builder
	script.WriteString("local t = {\n")
	for _, l := range literals {
		script.WriteString(l + ",\n")
	}
	script.WriteString("}\nfor _, s in ipairs(t) do io.write(#s, \"\\n\", s) end\n")
	file := filepath.Join(t.TempDir(), "cases.lua")
	if err := os.WriteFile(file, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lua, file).Output()
	if err != nil {
		t.Fatalf("lua5.4 rejected the encoded literals: %v", err)
	}
	var got [][]byte
	for len(out) > 0 {
		nl := bytes.IndexByte(out, '\n')
		n, err := strconv.Atoi(string(out[:nl]))
		if err != nil {
			t.Fatalf("bad lua output %q", out)
		}
		got = append(got, out[nl+1:nl+1+n])
		out = out[nl+1+n:]
	}
	return got
}

func checkShape(t testing.TB, s, lit string) {
	t.Helper()
	if strings.ContainsAny(lit, "\n\r") || strings.Contains(lit, "]]") {
		t.Errorf("String(%q) = %s contains a raw newline or ]]", s, lit)
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] < 0x20 || lit[i] >= 0x7f {
			t.Errorf("String(%q) = %q contains the raw byte %#x", s, lit, lit[i])
		}
	}
}

func TestStringAgainstLua(t *testing.T) {
	cases := []string{"", "plain", `quote " and \ backslash`, "new\nline\r\ttab", "]]", "a]]]b", "[[x]]",
		"\x00nul", "1\x001", "\x7f\x80\xff", "ünïcödé ✓", "\xc3\x28 invalid utf-8", "\\0123", "--[[ comment",
		"'); os.exit(1); --", "\a\b\f\v", "9\x009"}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 300; i++ {
		b := make([]byte, r.Intn(40))
		r.Read(b)
		cases = append(cases, string(b))
	}
	lits := make([]string, len(cases))
	for i, c := range cases {
		lits[i] = luacfg.String(c)
		checkShape(t, c, lits[i])
	}
	got := luaEval(t, lits)
	if len(got) != len(cases) {
		t.Fatalf("lua returned %d strings for %d cases", len(got), len(cases))
	}
	for i, c := range cases {
		if string(got[i]) != c {
			t.Errorf("String(%q) = %s evaluates to %q in Lua", c, lits[i], got[i])
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "a", "\n", "]]", "\"\\", "\x00\xff", "é"} {
		f.Add(s)
	}
	lua := needLua(f)
	f.Fuzz(func(t *testing.T, s string) {
		lit := luacfg.String(s)
		checkShape(t, s, lit)
		out, err := exec.Command(lua, "-e", "io.write("+lit+")").Output()
		if err != nil {
			t.Fatalf("lua5.4 rejected %s: %v", lit, err)
		}
		if string(out) != s {
			t.Fatalf("String(%q) = %s evaluates to %q", s, lit, out)
		}
	})
}

func TestValue(t *testing.T) {
	tests := []struct {
		in   any
		want string
		err  string
	}{
		{true, "true", ""},
		{int64(-5), "-5", ""},
		{uint16(7), "7", ""},
		{1.5, "1.5", ""},
		{2.0, "2.0", ""},
		{1e21, "1e+21", ""},
		{"x", `"x"`, ""},
		{[]any{"a", int64(1)}, `{ "a", 1 }`, ""},
		{[]string{}, "{}", ""},
		{map[string]any{"b": 1, "a": "x", "end": true, "with-dash": false, "_ok9": 2}, `{ _ok9 = 2, a = "x", b = 1, ["end"] = true, ["with-dash"] = false }`, ""},
		{map[string]any{"c2s": map[string]any{"rate": "10kb/s"}}, `{ c2s = { rate = "10kb/s" } }`, ""},
		{pfe.Credential{Name: "db_password"}, `Credential("db_password")`, ""},
		{pfe.LuaCode{Code: "os.time()", Source: "config/x.json"}, "os.time()", ""},
		{pfe.LuaCode{Code: "os.exit()"}, "", "raw Lua without a source file is refused"},
		{math.NaN(), "", "not finite"},
		{math.Inf(1), "", "not finite"},
		{[]any{nil}, "", "element 1: nil cannot be encoded"},
		{struct{}{}, "", "cannot be encoded as Lua"},
	}
	for _, tc := range tests {
		got, err := luacfg.Value(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Value(%#v) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Value(%#v) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	// Every encoded table is valid Lua and means what it says.
	v := map[string]any{"list": []any{"x\n", 1.25, false}, "nested": map[string]any{"k k": "v"}}
	lit, err := luacfg.Value(v)
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("local t = %s; io.write(t.list[1], t.list[2], tostring(t.list[3]), t.nested[\"k k\"])", lit)
	out, err := exec.Command(needLua(t), "-e", script).CombinedOutput()
	if err != nil || string(out) != "x\n1.25falsev" {
		t.Errorf("lua read %s as %q (%v)", lit, out, err)
	}
}
