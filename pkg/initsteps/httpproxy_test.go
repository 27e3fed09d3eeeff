package initsteps_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// Each HTTP-side variable reaches the Prosody option it names, in the section Prosody reads it
// from, through the plan of the shipped config tree, with the feature that put it there (what
// `entrypoint explain` prints); unset, the option is left out and Prosody's default applies.
func TestHTTPProxyVariablesReachTheirOptions(t *testing.T) {
	tree, err := pfe.Load("../../config", "")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"PROSODY_PROFILE=development", "PROSODY_ENVIRONMENT=production", "PROSODY_DOMAIN=example.org"}
	planFor := func(t *testing.T, env ...string) *pfe.Plan {
		t.Helper()
		st, _, err := settings.Load(append(slices.Clone(base), env...))
		if err != nil {
			t.Fatal(err)
		}
		p, err := tree.Plan(initsteps.PlanInputs(st))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	upload := func(p *pfe.Plan) pfe.SectionPlan {
		for _, c := range p.Components {
			if c.Type == "http_file_share" {
				return c.SectionPlan
			}
		}
		t.Fatal("the development profile has no http_file_share component")
		return pfe.SectionPlan{}
	}
	global := func(p *pfe.Plan) pfe.SectionPlan { return p.Global }
	cases := []struct {
		env     string
		section func(*pfe.Plan) pfe.SectionPlan
		option  string
		want    any
		feature string
	}{
		{"PROSODY_HTTP_INTERFACES=*,::", global, "http_interfaces", []any{"*", "::"}, "web/http"},
		{"PROSODY_HTTPS_INTERFACES=10.0.0.5", global, "https_interfaces", []any{"10.0.0.5"}, "web/http"},
		{"PROSODY_TRUSTED_PROXIES=10.0.0.0/8,fd00::1", global, "trusted_proxies", []any{"10.0.0.0/8", "fd00::1"}, "web/http"},
		{"PROSODY_HTTP_EXTERNAL_URL=https://xmpp.example.org/", global, "http_external_url", "https://xmpp.example.org/", "web/http"},
		// The upload component follows the global URL, and answers on its host.
		{"PROSODY_HTTP_EXTERNAL_URL=https://xmpp.example.org/", upload, "http_external_url", "https://xmpp.example.org/", "web/upload"},
		{"PROSODY_HTTP_EXTERNAL_URL=https://xmpp.example.org/", upload, "http_host", "xmpp.example.org", "web/upload"},
		{"PROSODY_HTTP_UPLOAD_EXTERNAL_URL=https://files.example.org:8443/up/", upload, "http_external_url", "https://files.example.org:8443/up/", "web/upload"},
		{"PROSODY_HTTP_UPLOAD_EXTERNAL_URL=https://files.example.org:8443/up/", upload, "http_host", "files.example.org", "web/upload"},
		{"PROSODY_CONSIDER_WEBSOCKET_SECURE=true", global, "consider_websocket_secure", true, "web/websocket"},
		{"PROSODY_CONSIDER_BOSH_SECURE=true", global, "consider_bosh_secure", true, "web/http"},
		{"PROSODY_OPENMETRICS_ALLOW_IPS=10.0.0.9", global, "openmetrics_allow_ips", []any{"10.0.0.9"}, "admin/monitoring"},
		{"PROSODY_OPENMETRICS_ALLOW_CIDR=10.0.0.0/8", global, "openmetrics_allow_cidr", "10.0.0.0/8", "admin/monitoring"},
	}
	unset := planFor(t)
	for _, c := range cases {
		t.Run(c.env+"/"+c.option, func(t *testing.T) {
			if _, ok := optionOf(c.section(unset), c.option); ok {
				t.Errorf("%s is set without %s: Prosody's default must apply", c.option, strings.SplitN(c.env, "=", 2)[0])
			}
			o, ok := optionOf(c.section(planFor(t, c.env)), c.option)
			if !ok {
				t.Fatalf("%s does not set %s", c.env, c.option)
			}
			if !reflect.DeepEqual(o.Value, c.want) {
				t.Errorf("%s = %#v, want %#v", c.option, o.Value, c.want)
			}
			if len(o.Why) == 0 || !strings.HasPrefix(o.Why[len(o.Why)-1], "feature "+c.feature+" ") {
				t.Errorf("%s: why = %q, want the feature %s", c.option, o.Why, c.feature)
			}
		})
	}
	// false is Prosody's default: not written.
	p := planFor(t, "PROSODY_CONSIDER_WEBSOCKET_SECURE=false", "PROSODY_CONSIDER_BOSH_SECURE=false")
	for _, name := range []string{"consider_websocket_secure", "consider_bosh_secure"} {
		if o, ok := optionOf(p.Global, name); ok {
			t.Errorf("%s = %#v with the variable false, want it left out", name, o.Value)
		}
	}
}

func optionOf(sp pfe.SectionPlan, name string) (pfe.Option, bool) {
	for _, o := range sp.Options {
		if o.Name == name {
			return o, true
		}
	}
	return pfe.Option{}, false
}
