package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
)

// A server with two domains (PROSODY_DOMAIN="one,two": two VirtualHosts) is
// checked on each: verify makes a throwaway account on both, logs in on both
// and reports a block of lines per domain, so a module that loads on the
// first host but refuses the second FAILs the feature on the second only
// (exit 1), where checking the first domain alone passed. Readiness and the
// per-host metric name the host that lacks the module, and no throwaway
// account is left on either host.
func TestVerifyChecksEveryDomain(t *testing.T) {
	t.Parallel()
	const first, second = "one.e2e.test", "two.e2e.test"
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	// A real module that refuses to load on one host (as one with a bad
	// per-host option does): Prosody logs it and keeps the other host's.
	mod := `if module.host == "` + second + `" then error("pfe e2e: this module refuses ` + second + `") end` + "\n" +
		`module:add_feature("urn:pfe:test:onehost")` + "\n"
	if err := os.WriteFile(filepath.Join(plugins, "mod_pfe_onehost.lua"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, Options{Domain: first + "," + second, Env: map[string]string{
		"PROSODY_PLUGIN_DIR": plugins, "PROSODY_FEATURES_TEST_ONEHOST": "true",
	}})
	feature := `{"name": "test/onehost", "description": "a feature whose module loads on one host only",
		"stability": "experimental", "packages": ["prosody"],
		"disco": {"server": ["urn:pfe:test:onehost"]}, "global": {"modules": ["pfe_onehost"]}}`
	if err := os.MkdirAll(filepath.Join(s.Dir, "custom", "features", "test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "custom", "features", "test", "onehost.json"), []byte(feature), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Start()
	var body string
	s.WaitFor(60*time.Second, "/readyz 503 naming the module missing on the second host", func() bool {
		code, b, err := s.Get("/readyz")
		body = b
		return err == nil && code == 503 && strings.Contains(b, "pfe_onehost on "+second)
	})
	if strings.Contains(body, "pfe_onehost on "+first) {
		t.Errorf("/readyz = %q: the module is loaded on %s", body, first)
	}
	_, m, _ := s.Get("/metrics")
	for _, want := range []string{
		`prosody_pfe_plan_modules{host="` + second + `",state="missing"} 1`,
		`prosody_pfe_plan_modules{host="` + first + `",state="missing"} 0`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m, "plan_modules"))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := adminsock.Dial(ctx, filepath.Join(s.Dir, "data", "prosody.sock"))
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	defer conn.Close()
	for _, d := range []string{first, second} {
		if res, err := conn.Exec(ctx, "user:create("+adminsock.LuaQuote("keep@"+d)+", "+adminsock.LuaQuote(randomPassword())+")"); err != nil || !res.OK {
			t.Fatalf("create keep@%s: %v %+v", d, err, res)
		}
	}

	code, rep, stderr := runVerify(t, s, "")
	if code != 1 || rep.Failed != 1 || !slices.Equal(rep.Domains, []string{first, second}) {
		t.Fatalf("verify exit %d, %d failed, domains %v; want 1, one FAIL, both domains\n%+v\n%s", code, rep.Failed, rep.Domains, rep.Lines, stderr)
	}
	features := len(s.Status().Features)
	perDomain := map[string]map[string]string{first: {}, second: {}}
	for _, l := range rep.Lines {
		ev := strings.Join(l.Evidence, "; ")
		got, ok := perDomain[l.Domain]
		if !ok {
			t.Errorf("line %s on %q: not a domain of the plan", l.Feature, l.Domain)
			continue
		}
		got[l.Feature] = l.Result
		switch {
		case l.Feature == "login" && (l.Result != "PASS" || !strings.Contains(ev, "@"+l.Domain+"/verify")):
			t.Errorf("login on %s: %s %s, want PASS bound on that domain", l.Domain, l.Result, ev)
		case l.Feature == "test/onehost" && l.Domain == second && (l.Result != "FAIL" ||
			!strings.Contains(ev, "module pfe_onehost is not loaded on "+second) || !strings.Contains(ev, "does not advertise urn:pfe:test:onehost")):
			t.Errorf("test/onehost on %s: %s %s, want FAIL naming the module and the namespace", second, l.Result, ev)
		case l.Feature == "test/onehost" && l.Domain == first && (l.Result != "PASS" || !strings.Contains(ev, "server advertises urn:pfe:test:onehost")):
			t.Errorf("test/onehost on %s: %s %s, want PASS", first, l.Result, ev)
		case l.Feature != "test/onehost" && l.Result == "FAIL":
			t.Errorf("%s FAILs on %s: %s", l.Feature, l.Domain, ev)
		case l.Feature == "collaboration/muc" && l.Result == "PASS" && !strings.Contains(ev, "@conference."+l.Domain+" created"):
			t.Errorf("collaboration/muc on %s did not use that domain's MUC: %s", l.Domain, ev)
		}
	}
	for d, got := range perDomain {
		if len(got) != features+1 {
			t.Errorf("%s has %d lines, want one per feature (%d) and login: %v", d, len(got), features, got)
		}
	}
	if v := s.moduleStatus().Verify; v == nil || v.OK || !slices.Equal(v.FailedFeatures, []string{"test/onehost on " + second}) {
		t.Errorf("/status verify = %+v, want the failed run naming test/onehost on %s", v, second)
	}

	// Both throwaway accounts are gone; the accounts that were there stay.
	for _, d := range []string{first, second} {
		res, err := conn.Exec(ctx, "user:list("+adminsock.LuaQuote(d)+")")
		if err != nil || !res.OK {
			t.Fatalf("user:list(%q): %v %+v", d, err, res)
		}
		if left := strings.Join(res.Output, "\n"); strings.Contains(left, "pfe-verify-") || !strings.Contains(left, "keep@"+d) {
			t.Errorf("accounts on %s after verify, want keep@%s and no pfe-verify-…:\n%s", d, d, left)
		}
	}
}
