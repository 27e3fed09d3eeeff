package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// An operator's VirtualHost template (PROSODY_CUSTOM_DIR/templates/vhost.json)
// is what every domain of PROSODY_DOMAIN gets: with two domains, a real client
// (slixmpp) logging in on the second one finds the template's module (carbons,
// which the minimal profile leaves out) and its contact addresses (XEP-0157) in
// the disco#info of its own domain and of the first one, and `entrypoint
// explain` says they come from the template.
func TestVHostTemplateServesEveryDomain(t *testing.T) {
	probePython(t)
	const first, second = "one.e2e.test", "two.e2e.test"
	const support = "mailto:support@two.e2e.test"
	password := randomPassword()
	s := NewServer(t, Options{Profile: "minimal", Environment: "development", Domain: first + "," + second, Env: map[string]string{
		"PROSODY_STORAGE":              "sqlite",
		"PROSODY_ADMINS":               "admin@" + second,
		"PROSODY_ADMIN_PASSWORD":       password,
		"PROSODY_FEATURES_ADMIN_SHELL": "true", // the admin account is made over the admin shell
	}})
	tmpl := `{"description": "e2e: what every domain gets",
  "host": {"modules": ["carbons"], "settings": {"contact_info": {"support": ["` + support + `"]}}}}`
	path := filepath.Join(s.Dir, "custom", "templates", "vhost.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}

	// The plan says where contact_info comes from, before anything runs.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	explain := exec.CommandContext(ctx, entrypointBin, "explain", "contact_info")
	explain.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range s.Env {
		explain.Env = append(explain.Env, k+"="+v)
	}
	out, err := explain.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "option contact_info in host") || !strings.Contains(string(out), "because: template vhost") {
		t.Errorf("entrypoint explain contact_info (%v):\n%s\nwant it in the host section because of the template", err, out)
	}

	s.Start()
	s.WaitReady(60 * time.Second)
	s.WaitFor(30*time.Second, "admin account created", func() bool {
		return strings.Contains(s.Stderr(), "admin account created")
	})
	r := runProbe(t, s, serverCA(s, nil), "admin@"+second, password, first)
	for domain, info := range map[string]discoInfo{second: r.Server, first: r.Infos[first]} {
		if !info.has("urn:xmpp:carbons:2") {
			t.Errorf("disco#info of %s lacks carbons (urn:xmpp:carbons:2), which the template loads on every VirtualHost: %v", domain, info.Features)
		}
		got := info.Forms["http://jabber.org/network/serverinfo"]["support-addresses"]
		if !slices.Equal(got, []string{support}) {
			t.Errorf("disco#info of %s: support-addresses = %q, want the template's [%q] (forms: %v)", domain, got, support, info.Forms)
		}
	}
}
