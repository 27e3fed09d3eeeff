package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the README's variable table")

const (
	beginVars = "<!-- BEGIN VARIABLES -->\n"
	endVars   = "<!-- END VARIABLES -->"
)

// The README documents every variable exactly as the settings struct defines it.
func TestReadmeVariablesAreCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := settings.Markdown(&table); err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i, j := strings.Index(text, beginVars), strings.Index(text, endVars)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", beginVars, endVars)
	}
	want := text[:i+len(beginVars)] + table.String() + text[j:]
	if want == text {
		return
	}
	if *updateReadme {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("README.md's variable table is stale: run go test ./cmd/entrypoint -run Readme -update-readme")
}
