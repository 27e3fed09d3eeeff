package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
)

// With a bring-your-own config, explain says the tree does not describe what Prosody runs.
func TestExplainWithOwnConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := runPFE("explain", []string{"mam"}, []string{"PROSODY_CONFIG_FILE=/etc/prosody/prosody.cfg.lua"}, &out, &errb)
	if code != exitcode.OK || !strings.Contains(out.String(), `PROSODY_CONFIG_FILE="/etc/prosody/prosody.cfg.lua"`) || !strings.Contains(out.String(), "not used") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// validate runs the tree's Lua, so in production it refuses, before it checks
// anything, a custom tree others can change: the settings reach the PFE verbs'
// validate through its credential, exit 78 naming the variable.
func TestValidateRefusesAWritableTreeInProduction(t *testing.T) {
	root := filepath.Join(t.TempDir(), "srv")
	tree, err := filepath.Abs(filepath.Join("..", "..", "config"))
	if err != nil {
		t.Fatal(err)
	}
	vars, _, err := entrypointtest.ServerEnv(root, tree)
	if err != nil {
		t.Fatal(err)
	}
	vars["PROSODY_ENVIRONMENT"] = "production"
	if err := os.Chmod(vars["PROSODY_CUSTOM_DIR"], 0o777); err != nil {
		t.Fatal(err)
	}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	var out, errb bytes.Buffer
	code := runPFE("validate", nil, env, &out, &errb)
	if code != exitcode.Config || !strings.Contains(errb.String(), "PROSODY_CUSTOM_DIR") || out.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q; want %d naming PROSODY_CUSTOM_DIR, nothing validated", code, out.String(), errb.String(), exitcode.Config)
	}
}
