package cmdroute

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// prosodyctlSource reads the installed prosodyctl.
func prosodyctlSource(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("prosodyctl")
	if err != nil {
		t.Fatalf("prosodyctl is not installed (scripts/install-deps installs Prosody 13): %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// containsCommand reports whether prosodyctl defines command c the two ways it does:
// `function commands.c(` in prosodyctl itself, or the module util/prosodyctl/c.lua under its
// CFG_SOURCEDIR (cert, check, shell), which it loads for a command it does not define.
func containsCommand(src, c string) bool {
	if regexp.MustCompile(`function commands\.` + regexp.QuoteMeta(c) + `\(`).MatchString(src) {
		return true
	}
	m := regexp.MustCompile(`CFG_SOURCEDIR='([^']+)'`).FindStringSubmatch(src)
	if m == nil {
		return false
	}
	_, err := os.Stat(filepath.Join(m[1], "util", "prosodyctl", c+".lua"))
	return err == nil
}
