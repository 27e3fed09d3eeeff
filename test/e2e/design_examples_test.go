package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// designCLI runs the entrypoint binary with args against the repository's tree and
// custom dir, with extra in its environment, and returns exit code, stdout, stderr.
func designCLI(t *testing.T, custom string, extra []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, entrypointBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PROSODY_CONFIG_DIR=" + filepath.Join(repoRoot, "config"),
		"PROSODY_CUSTOM_DIR=" + custom, "PROSODY_DOMAIN=" + profileDomain}, extra...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("entrypoint %q: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// readDotEnv returns the NAME=value lines of a generated .env file.
func readDotEnv(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	return env
}

// The design's own example commands (seed 002, "Profile Manager Script" and
// "Environment Configuration Generator") do what the design says, with the real
// binary, tree and checkers: create mycompany from enterprise, validate it, generate
// its config for production, list profiles and features, and write the .env files
// of a profile, which then load and render.
func TestDesignExampleCommands(t *testing.T) {
	custom := t.TempDir()
	run := func(extra []string, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := designCLI(t, custom, extra, args...)
		if code != 0 {
			t.Fatalf("entrypoint %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out, errOut
	}
	// $0 create mycompany enterprise
	out, _ := run(nil, "profiles", "create", "mycompany", "enterprise")
	if !strings.Contains(out, filepath.Join(custom, "profiles", "mycompany", "profile.json")) {
		t.Errorf("create printed %q", out)
	}
	var mine, enterprise struct{ Features []string }
	for name, p := range map[string]*struct{ Features []string }{"mycompany": &mine, "enterprise": &enterprise} {
		out, _ := run(nil, "profiles", "show", name, "--json")
		if err := json.Unmarshal([]byte(out), p); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(mine.Features, enterprise.Features) {
		t.Errorf("mycompany has %v, want enterprise's %v", mine.Features, enterprise.Features)
	}
	// $0 validate mycompany: one profile, every environment, really checked.
	out, _ = run(nil, "profiles", "validate", "mycompany", "--json")
	var res []validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != len(catalogEnvironments) || slices.ContainsFunc(res, func(r validateResult) bool { return r.Profile != "mycompany" || !r.OK }) {
		t.Errorf("validate mycompany: %+v", res)
	}
	// validate with no name checks PROSODY_PROFILE (the design: ${PROSODY_PROFILE:-standard}).
	out, _ = run([]string{"PROSODY_PROFILE=minimal"}, "profiles", "check", "--json")
	res = nil
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) == 0 || slices.ContainsFunc(res, func(r validateResult) bool { return r.Profile != "minimal" }) {
		t.Errorf("profiles check with PROSODY_PROFILE=minimal: %v %+v", err, res)
	}
	// $0 generate mycompany production [OUT]
	cfg := filepath.Join(t.TempDir(), "prosody.cfg.lua")
	run(nil, "profiles", "generate", "mycompany", "production", cfg)
	if b, err := os.ReadFile(cfg); err != nil || !strings.Contains(string(b), "-- profile: mycompany") || !strings.Contains(string(b), "production-rules.pfw") {
		t.Errorf("generate wrote %v: %.300s", err, b)
	}
	// list | ls, features
	if out, _ := run(nil, "profiles", "ls"); !strings.Contains(out, "mycompany") || !strings.Contains(out, "Custom profile mycompany, based on enterprise") {
		t.Errorf("profiles ls: %s", out)
	}
	if out, _ := run(nil, "profiles", "features"); !strings.Contains(out, "authentication/modern") {
		t.Errorf("profiles features: %s", out)
	}
	// env-generator.sh: .env.<profile>.<environment>, with the profile's toggles.
	dir := t.TempDir()
	out, _ = run(nil, "env", "generate", "standard", "--all", "--out", dir)
	for _, e := range catalogEnvironments {
		if !strings.Contains(out, "Generated: "+filepath.Join(dir, ".env.standard."+e)) {
			t.Errorf("env generate --all did not write .env.standard.%s: %s", e, out)
		}
	}
	env := readDotEnv(t, filepath.Join(dir, ".env.standard.production"))
	for _, want := range []string{"PROSODY_PROFILE=standard", "PROSODY_FEATURES_WEB_ENABLED=true", "PROSODY_FEATURES_AUTH_MODERN=true", "PROSODY_FEATURES_WEB_ADMIN=false"} {
		if !slices.Contains(env, want) {
			t.Errorf(".env.standard.production lacks %s: %q", want, env)
		}
	}
	run(nil, "env", "generate", "minimal", "development", "--out", dir)
	envMin := readDotEnv(t, filepath.Join(dir, ".env.minimal.development"))
	if !slices.Contains(envMin, "PROSODY_FEATURES_WEB_ENABLED=false") {
		t.Errorf(".env.minimal.development lacks PROSODY_FEATURES_WEB_ENABLED=false: %q", envMin)
	}
	// The generated file is an environment the entrypoint takes as it is.
	if out, _ := run(env, "render"); !strings.Contains(out, "-- profile: standard") {
		t.Errorf("render with .env.standard.production: %.300s", out)
	}
	if code, _, errOut := designCLI(t, custom, nil, "env", "generate", "nosuch"); code != 78 || !strings.Contains(errOut, `profile "nosuch" does not exist`) {
		t.Errorf("env generate nosuch: exit %d, %s", code, errOut)
	}
	// features create NAME, from the feature template.
	run(nil, "features", "create", "collaboration/room-blocklist")
	if _, err := os.Stat(filepath.Join(custom, "features", "collaboration", "room-blocklist.json")); err != nil {
		t.Errorf("features create: %v", err)
	}
}
