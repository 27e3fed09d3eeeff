package settings

import (
	"slices"
	"strings"
	"testing"
)

// The HTTP-side variables are unset by default (Prosody's own defaults apply: the plain HTTP
// listener stays on loopback), and read into typed fields when set.
func TestHTTPProxySettings(t *testing.T) {
	s, _ := mustLoad(t)
	if s.HTTPInterfaces != nil || s.HTTPSInterfaces != nil || s.TrustedProxies != nil || s.HTTPExternalURL != "" ||
		s.HTTPUploadExternalURL != "" || s.ConsiderWebsocketSecure || s.ConsiderBoshSecure ||
		s.OpenmetricsAllowIPs != nil || s.OpenmetricsAllowCIDR != "" {
		t.Fatalf("defaults set something: %+v", s)
	}
	s, _ = mustLoad(t,
		"PROSODY_HTTP_INTERFACES=*, ::",
		"PROSODY_HTTPS_INTERFACES=127.0.0.1",
		"PROSODY_TRUSTED_PROXIES=10.0.0.0/8, FD00:0:0::1 ,127.0.0.1",
		"PROSODY_HTTP_EXTERNAL_URL=https://xmpp.example.org/",
		"PROSODY_HTTP_UPLOAD_EXTERNAL_URL=https://upload.example.org:8443/files/",
		"PROSODY_CONSIDER_WEBSOCKET_SECURE=true",
		"PROSODY_CONSIDER_BOSH_SECURE=yes",
		"PROSODY_OPENMETRICS_ALLOW_IPS=10.1.2.3,FD00::A",
		"PROSODY_OPENMETRICS_ALLOW_CIDR=10.0.0.0/8",
	)
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"HTTPInterfaces", s.HTTPInterfaces, []string{"*", "::"}},
		{"HTTPSInterfaces", s.HTTPSInterfaces, []string{"127.0.0.1"}},
		// Addresses are canonical: Prosody compares them as text with the client's address.
		{"TrustedProxies", s.TrustedProxies, []string{"10.0.0.0/8", "fd00::1", "127.0.0.1"}},
		{"HTTPExternalURL", s.HTTPExternalURL, "https://xmpp.example.org/"},
		{"HTTPUploadExternalURL", s.HTTPUploadExternalURL, "https://upload.example.org:8443/files/"},
		{"ConsiderWebsocketSecure", s.ConsiderWebsocketSecure, true},
		{"ConsiderBoshSecure", s.ConsiderBoshSecure, true},
		{"OpenmetricsAllowIPs", s.OpenmetricsAllowIPs, []string{"10.1.2.3", "fd00::a"}},
		{"OpenmetricsAllowCIDR", s.OpenmetricsAllowCIDR, "10.0.0.0/8"},
	} {
		g, gok := c.got.([]string)
		w, wok := c.want.([]string)
		if gok && wok && slices.Equal(g, w) || !gok && c.got == c.want {
			continue
		}
		t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
	}
}

func TestHTTPProxyProblems(t *testing.T) {
	for _, tc := range []struct {
		env, wantVar, want string
	}{
		{"PROSODY_HTTP_INTERFACES=localhost", "PROSODY_HTTP_INTERFACES", `"localhost" is not an IP address`},
		{"PROSODY_HTTPS_INTERFACES=0.0.0.0/0", "PROSODY_HTTPS_INTERFACES", "is not an IP address"},
		{"PROSODY_TRUSTED_PROXIES=proxy.internal", "PROSODY_TRUSTED_PROXIES", `"proxy.internal": not an IP address or CIDR range; accepted: IP addresses or CIDR ranges`},
		{"PROSODY_TRUSTED_PROXIES=10.0.0.1,,10.0.0.2", "PROSODY_TRUSTED_PROXIES", "empty item"},
		{"PROSODY_TRUSTED_PROXIES=10.0.0.0/33", "PROSODY_TRUSTED_PROXIES", "not an IP address or CIDR range"},
		{"PROSODY_HTTP_EXTERNAL_URL=xmpp.example.org", "PROSODY_HTTP_EXTERNAL_URL", `scheme "" is not http or https`},
		{"PROSODY_HTTP_EXTERNAL_URL=ftp://xmpp.example.org/", "PROSODY_HTTP_EXTERNAL_URL", `scheme "ftp"`},
		{"PROSODY_HTTP_EXTERNAL_URL=https:///path", "PROSODY_HTTP_EXTERNAL_URL", "no host name"},
		{"PROSODY_HTTP_EXTERNAL_URL=https://u:p@xmpp.example.org/", "PROSODY_HTTP_EXTERNAL_URL", "user name or password"},
		{"PROSODY_HTTP_UPLOAD_EXTERNAL_URL=https://upload.example.org/?x=1", "PROSODY_HTTP_UPLOAD_EXTERNAL_URL", "query or fragment"},
		{"PROSODY_CONSIDER_WEBSOCKET_SECURE=maybe", "PROSODY_CONSIDER_WEBSOCKET_SECURE", "maybe"},
		{"PROSODY_CONSIDER_BOSH_SECURE=", "PROSODY_CONSIDER_BOSH_SECURE", "set but empty"},
		{"PROSODY_OPENMETRICS_ALLOW_IPS=10.0.0.0/8", "PROSODY_OPENMETRICS_ALLOW_IPS", `"10.0.0.0/8": not an IP address; accepted: IP addresses`},
		{"PROSODY_OPENMETRICS_ALLOW_CIDR=10.0.0.0/8,192.168.0.0/16", "PROSODY_OPENMETRICS_ALLOW_CIDR", "not a CIDR range; accepted: one range"},
	} {
		ps := problemsOf(t, tc.env)
		if len(ps) != 1 || ps[0].Var != tc.wantVar || !strings.Contains(ps[0].String(), tc.want) {
			t.Errorf("%s: problems %v, want one on %s containing %q", tc.env, &Problems{List: ps}, tc.wantVar, tc.want)
		}
	}
}

// One external upload URL cannot serve the upload components of several domains: said at start.
func TestHTTPExternalURLWithSeveralDomainsWarns(t *testing.T) {
	for _, env := range []string{"PROSODY_HTTP_EXTERNAL_URL=https://xmpp.example.org/", "PROSODY_HTTP_UPLOAD_EXTERNAL_URL=https://up.example.org/"} {
		name, _, _ := strings.Cut(env, "=")
		_, ws := mustLoad(t, "PROSODY_DOMAIN=example.org,example.net", env)
		if !slices.ContainsFunc(ws, func(w Warning) bool { return w.Var == name && strings.Contains(w.Msg, "for one domain only") }) {
			t.Errorf("%s with two domains: warnings %v, want one on %s", env, ws, name)
		}
		if _, ws := mustLoad(t, "PROSODY_DOMAIN=example.org", env); slices.ContainsFunc(ws, func(w Warning) bool { return w.Var == name }) {
			t.Errorf("%s with one domain: warnings %v, want none on %s", env, ws, name)
		}
	}
}
