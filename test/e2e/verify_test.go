package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifyReport is `entrypoint verify --json`.
type verifyReport struct {
	Domains []string `json:"domains"`
	Lines   []struct {
		Domain   string   `json:"domain"`
		Feature  string   `json:"feature"`
		Result   string   `json:"result"`
		Evidence []string `json:"evidence"`
	} `json:"lines"`
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	NotCheckable int `json:"not_checkable"`
}

// runVerify runs `entrypoint verify --json` with s's environment, as
// `docker exec` would, trusting caFile for the server's certificate, and
// returns its exit code, report and stderr.
func runVerify(t testing.TB, s *Server, caFile string) (int, verifyReport, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"verify", "--json"}
	if caFile != "" {
		args = append(args, "--ca", caFile)
	}
	cmd := exec.CommandContext(ctx, entrypointBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("entrypoint verify: %v", err)
	}
	var rep verifyReport
	if len(out) > 0 {
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("decode verify --json (exit %d): %v\n%s\n%s", code, err, out, stderr.String())
		}
	}
	return code, rep, stderr.String()
}

// moduleStatus is /status "modules" and "verify".
type moduleStatus struct {
	Modules *struct {
		Skipped string `json:"skipped"`
		Planned int    `json:"planned"`
		Missing int    `json:"missing"`
		Hosts   []struct {
			Host          string   `json:"host"`
			Missing       []string `json:"missing"`
			ProsodyErrors []string `json:"prosody_errors"`
		} `json:"hosts"`
	} `json:"modules"`
	Verify *struct {
		OK             bool     `json:"ok"`
		Failed         int      `json:"failed"`
		FailedFeatures []string `json:"failed_features"`
	} `json:"verify"`
}

func (s *Server) moduleStatus() moduleStatus {
	s.t.Helper()
	code, body, err := s.Get("/status")
	if err != nil || code != 200 {
		s.t.Fatalf("GET /status: %d %v", code, err)
	}
	var st moduleStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		s.t.Fatalf("decode /status: %v", err)
	}
	return st
}

// checkVerifyPasses runs verify on a ready server and fails t on any FAIL, or
// when the plan's modules are not all loaded.
func checkVerifyPasses(t *testing.T, s *Server, caFile string) {
	t.Helper()
	code, rep, stderr := runVerify(t, s, caFile)
	for _, l := range rep.Lines {
		if l.Result == "FAIL" {
			t.Errorf("verify FAIL %s: %s", l.Feature, strings.Join(l.Evidence, "; "))
		}
	}
	if code != 0 || rep.Failed != 0 || rep.Passed < 3 || len(rep.Lines) != len(s.Status().Features)+1 {
		t.Fatalf("verify exit %d, %d passed, %d failed, %d lines for %d features (want 0 failed, a line per feature and login)\n%s",
			code, rep.Passed, rep.Failed, len(rep.Lines), len(s.Status().Features), stderr)
	}
	ms := s.moduleStatus()
	if ms.Modules == nil || ms.Modules.Planned == 0 || ms.Modules.Missing != 0 {
		t.Errorf("/status modules = %+v, want every planned module loaded", ms.Modules)
	}
	if ms.Verify == nil || !ms.Verify.OK {
		t.Errorf("/status verify = %+v, want the summary of the run that passed", ms.Verify)
	}
}

// A feature whose module cannot load (its Lua library is missing): Prosody
// logs it and keeps running, but /readyz answers 503 naming the module and
// Prosody's own error, /status and the metric count it missing, and verify
// FAILs that feature (exit 1) while the others still pass.
func TestBrokenModuleFailsReadinessAndVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	mod := `local lib = require "pfe_missing_lua_lib"` + "\n" + `module:add_feature("urn:pfe:test:broken")` + "\n"
	if err := os.WriteFile(filepath.Join(plugins, "mod_pfe_broken.lua"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, Options{Env: map[string]string{
		"PROSODY_PLUGIN_DIR": plugins, "PROSODY_FEATURES_TEST_BROKEN": "true",
	}})
	feature := `{"name": "test/broken", "description": "a feature whose module needs a Lua library that is not installed",
		"stability": "experimental", "packages": ["prosody"],
		"disco": {"server": ["urn:pfe:test:broken"]}, "global": {"modules": ["pfe_broken"]}}`
	if err := os.MkdirAll(filepath.Join(s.Dir, "custom", "features", "test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "custom", "features", "test", "broken.json"), []byte(feature), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Start()
	var body string
	s.WaitFor(60*time.Second, "/readyz 503 naming the module that did not load", func() bool {
		code, b, err := s.Get("/readyz")
		body = b
		return err == nil && code == 503 && strings.Contains(b, "pfe_broken on localhost")
	})
	if !strings.Contains(body, "pfe_missing_lua_lib") || !strings.Contains(body, "degraded") {
		t.Errorf("/readyz = %q, want degraded with Prosody's own error (the missing Lua library)", body)
	}
	ms := s.moduleStatus()
	if ms.Modules == nil || ms.Modules.Missing != 1 || len(ms.Modules.Hosts) == 0 || len(ms.Modules.Hosts[0].Missing) != 1 ||
		ms.Modules.Hosts[0].Missing[0] != "pfe_broken" || len(ms.Modules.Hosts[0].ProsodyErrors) == 0 {
		t.Errorf("/status modules = %+v, want pfe_broken missing on localhost with Prosody's error line", ms.Modules)
	}
	if _, m, _ := s.Get("/metrics"); !strings.Contains(m, `prosody_pfe_plan_modules{host="localhost",state="missing"} 1`) {
		t.Errorf("metrics do not count the missing module:\n%s", grepLines(m, "plan_modules"))
	}

	code, rep, stderr := runVerify(t, s, filepath.Join(s.Dir, "data", "certs", "selfsigned.crt"))
	if code != 1 || rep.Failed != 1 {
		t.Fatalf("verify exit %d with %d failed, want 1 and one FAIL\n%+v\n%s", code, rep.Failed, rep, stderr)
	}
	for _, l := range rep.Lines {
		ev := strings.Join(l.Evidence, "; ")
		switch {
		case l.Feature == "test/broken" && (l.Result != "FAIL" || !strings.Contains(ev, "module pfe_broken is not loaded on localhost") ||
			!strings.Contains(ev, "does not advertise urn:pfe:test:broken")):
			t.Errorf("test/broken: %s %s, want FAIL naming the module and the namespace", l.Result, ev)
		case l.Feature != "test/broken" && l.Result == "FAIL":
			t.Errorf("%s FAILs too: %s", l.Feature, ev)
		}
	}
	if v := s.moduleStatus().Verify; v == nil || v.OK || len(v.FailedFeatures) != 1 || v.FailedFeatures[0] != "test/broken" {
		t.Errorf("/status verify = %+v, want the failed run naming test/broken", v)
	}
}

// Without the admin shell the loaded modules cannot be read: /status says
// the check is skipped, readiness does not wait for it, and verify says why
// it cannot run.
func TestModuleCheckSkippedWithoutAdminShell(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Profile: "minimal"}).Start()
	s.WaitReady(30 * time.Second)
	ms := s.moduleStatus()
	if ms.Modules == nil || !strings.Contains(ms.Modules.Skipped, "admin shell is off") {
		t.Errorf("/status modules = %+v, want it skipped because the admin shell is off", ms.Modules)
	}
	code, _, stderr := runVerify(t, s, "")
	if code != 1 || !strings.Contains(stderr, "PROSODY_FEATURES_ADMIN_SHELL=true") {
		t.Errorf("verify without the admin shell: exit %d, stderr %q; want 1 and how to turn the shell on", code, stderr)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// PROSODY_VERIFY_ON_START runs the self-test once after the first readiness,
// against the real Prosody the entrypoint started: its result is logged and
// shown in /status, and the server keeps serving.
func TestVerifyOnStartReportsInStatusAndLog(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Env: map[string]string{"PROSODY_VERIFY_ON_START": "true"}}).Start()
	s.WaitReady(60 * time.Second)
	var ms moduleStatus
	s.WaitFor(90*time.Second, "/status verify from the run on start", func() bool {
		ms = s.moduleStatus()
		return ms.Verify != nil
	})
	if !ms.Verify.OK || ms.Verify.Failed != 0 {
		t.Errorf("/status verify = %+v, want the passed run on start", ms.Verify)
	}
	if !s.Logged(`"msg":"verify passed"`, `"failed":0`) {
		t.Errorf("the entrypoint log does not report verify on start:\n%s", tail(s.Stderr(), 4000))
	}
	if code, _, err := s.Get("/readyz"); err != nil || code != 200 {
		t.Errorf("/readyz after verify on start: %d %v, want 200", code, err)
	}
}
