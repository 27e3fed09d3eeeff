package luacfg_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
)

func writeCfg(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheck(t *testing.T) {
	needProsodyctl(t)
	ctx := context.Background()
	tests := []struct {
		name, file, content string
		warn, err           string
	}{
		{name: "valid", file: "ok.cfg.lua", content: "modules_enabled = { \"roster\", \"saslauth\", \"tls\" }\ncertificates = \".\"\nVirtualHost \"example.com\"\n"},
		{name: "syntax error has file:line", file: "bad.cfg.lua", content: "a = 1\nb = {\n", err: "bad.cfg.lua:3:"},
		{name: "misspelled directive is rejected by prosodyctl", file: "typo.cfg.lua", content: "VirtualHsot \"example.com\"\n", err: "prosodyctl check config rejected it (exit 1)"},
		{name: "problems are warnings", file: "warn.cfg.lua", content: "VirtualHost \"xn--bcher-kva.example\"\n", warn: "incorrectly-encoded hostnames"},
		{name: "name must end in .lua", file: "prosody.cfg", content: "", err: "must end in .lua"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeCfg(t, tc.file, tc.content)
			warnings, err := luacfg.Check(ctx, path, luacfg.CheckOptions{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			joined := strings.Join(warnings, "\n")
			if tc.warn == "" && len(warnings) > 0 || !strings.Contains(joined, tc.warn) {
				t.Errorf("warnings = %q, want %q", warnings, tc.warn)
			}
		})
	}
	// Without prosodyctl only the syntax is checked.
	path := writeCfg(t, "typo.cfg.lua", "VirtualHsot \"example.com\"\n")
	if _, err := luacfg.Check(ctx, path, luacfg.CheckOptions{SkipProsodyctl: true}); err != nil {
		t.Errorf("syntax-only check of valid syntax: %v", err)
	}
	if _, err := luacfg.Check(ctx, path, luacfg.CheckOptions{Luac: "no-such-luac"}); err == nil || !strings.Contains(err.Error(), "lua5.4") {
		t.Errorf("missing luac: err = %v, want a hint naming lua5.4", err)
	}
}
