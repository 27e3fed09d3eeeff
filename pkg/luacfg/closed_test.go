package luacfg

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A file is closed only when nothing but its bytes (and the credentials it
// names) decides what Prosody reads: every way Prosody's config loader reads
// the environment, a file or runs code makes it open.
func TestClosed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		creds []string
		open  bool
	}{
		{name: "options and sections", src: "-- c\nlog = { { levels = { min = \"info\" }, to = 'console' } }\n" +
			"modules_enabled = {\n\t\"roster\"; -- why\n}\nc2s_ports = { 5222, -1, 0x10, 1e+06, .5 }\nx = nil; y = true; z = false\n" +
			"VirtualHost \"example.org\"\n\tssl = { [\"key\"] = [[k]], [1] = [==[a]]b]==] }\n" +
			"Component(\"muc.example.org\")(\"muc\")\nComponent 'c.example.org' 'http_file_share'\nComponent \"x.example.org\"\n" +
			"--[[ long\ncomment ]] sql = { password = Credential(\"db_password\"), other = Credential 'a' }\n" +
			"s = \"a\\\"b\\\\\"\n"},
		{name: "credentials sorted without repeats", src: "a = Credential('z')\nb = Credential('a')\nc = Credential('z')\n",
			creds: []string{"a", "z"}},
		{name: "empty", src: ""},
		{name: "ENV_", src: "x = ENV_HOME\n", open: true},
		{name: "global read", src: "x = os\n", open: true},
		{name: "call in a value", src: "x = os.getenv('HOME')\n", open: true},
		{name: "Include", src: "Include \"conf.d/*.cfg.lua\"\n", open: true},
		{name: "include", src: "include(\"x.lua\")\n", open: true},
		{name: "RunScript", src: "RunScript \"x.lua\"\n", open: true},
		{name: "FileContents", src: "motd = FileContents(\"motd.txt\")\n", open: true},
		{name: "FileLine", src: "motd = FileLine \"motd.txt\"\n", open: true},
		{name: "FileLines", src: "admins = FileLines \"admins.txt\"\n", open: true},
		{name: "function", src: "x = function() end\n", open: true},
		{name: "keyword statement", src: "local x = 1\n", open: true},
		{name: "operator", src: "x = 1 + 2\n", open: true},
		{name: "concatenation", src: "x = 'a' .. 'b'\n", open: true},
		{name: "comparison", src: "x = 1 == 2\n", open: true},
		{name: "field assignment", src: "os.exit = 1\n", open: true},
		{name: "code in a table", src: "x = { dofile('y') }\n", open: true},
		{name: "computed key", src: "x = { [os] = 1 }\n", open: true},
		{name: "VirtualHost with a table", src: "VirtualHost \"a\" { x = 1 }\n", open: true},
		{name: "VirtualHost from a global", src: "VirtualHost(h)\n", open: true},
		{name: "credential path", src: "x = Credential('../etc/shadow')\n", open: true},
		{name: "credential escape", src: "x = Credential('a\\47b')\n", open: true},
		{name: "unfinished string", src: "x = 'a\n", open: true},
		{name: "unfinished long comment", src: "--[[ x\n", open: true},
		{name: "a comment is not a long bracket", src: "--[ x\ny = os\n", open: true},
		{name: "code after a line comment", src: "x = 1 -- ]]\ny = io\n", open: true},
		{name: "shebang", src: "#!/usr/bin/lua\nx = 1\n", open: true},
		{name: "goto", src: "::a:: x = 1\n", open: true},
		{name: "method call", src: "x = ('a'):rep(3)\n", open: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds, closed := Closed([]byte(tc.src))
			if closed == tc.open {
				t.Fatalf("closed = %v, want %v", closed, !tc.open)
			}
			if !tc.open && tc.creds != nil && !slices.Equal(creds, tc.creds) {
				t.Errorf("credentials %q, want %q", creds, tc.creds)
			}
		})
	}
}

// Every rendered golden file is closed (the legacy snippet in one of them is a
// literal assignment too), so a restart on them can skip the check.
func TestRenderedFilesAreClosed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.cfg.lua"))
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v %v", files, err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, closed := Closed(src); !closed {
			t.Errorf("%s is not closed", f)
		}
	}
}
