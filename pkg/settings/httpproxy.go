package settings

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// httpProxy reads the variables of Prosody's HTTP service behind a proxy: listen addresses,
// trusted proxies, external URLs, the websocket and BOSH "secure" overrides and who may read
// Prosody's /metrics. Each is checked here so a bad value stops start-up naming its variable,
// instead of reaching Prosody, which ignores or misreads it silently (a trusted_proxies entry
// that is not an address never matches; a relative http_external_url yields broken links).
func (p *parser) httpProxy(s *Settings, r *Env) {
	s.HTTPInterfaces = p.interfaces("PROSODY_HTTP_INTERFACES", r.HTTPInterfaces)
	s.HTTPSInterfaces = p.interfaces("PROSODY_HTTPS_INTERFACES", r.HTTPSInterfaces)
	s.TrustedProxies = p.addressList("PROSODY_TRUSTED_PROXIES", r.TrustedProxies, true)
	s.HTTPExternalURL = p.externalURL("PROSODY_HTTP_EXTERNAL_URL", r.HTTPExternalURL)
	s.HTTPUploadExternalURL = p.externalURL("PROSODY_HTTP_UPLOAD_EXTERNAL_URL", r.HTTPUploadExternalURL)
	if u, name := s.HTTPUploadExternalURL, "PROSODY_HTTP_UPLOAD_EXTERNAL_URL"; len(s.domains) > 1 && (u != "" || s.HTTPExternalURL != "") {
		if u == "" {
			u, name = s.HTTPExternalURL, "PROSODY_HTTP_EXTERNAL_URL"
		}
		// The upload component of every domain gets this URL and answers on its host, so
		// they share one set of routes and the first one loaded serves every slot.
		p.warn(name, fmt.Sprintf("with %d domains the upload service of each one is given %q and answers on its host: uploads work through it for one domain only; serve one domain per container, or leave the external URLs unset for direct uploads", len(s.domains), u))
	}
	s.ConsiderWebsocketSecure = p.boolean("PROSODY_CONSIDER_WEBSOCKET_SECURE", r.ConsiderWebsocketSecure)
	s.ConsiderBoshSecure = p.boolean("PROSODY_CONSIDER_BOSH_SECURE", r.ConsiderBoshSecure)
	s.OpenmetricsAllowIPs = p.addressList("PROSODY_OPENMETRICS_ALLOW_IPS", r.OpenmetricsAllowIps, false)
	if c := strings.TrimSpace(r.OpenmetricsAllowCIDR); c != "" {
		if _, _, err := net.ParseCIDR(c); err != nil {
			p.problem("PROSODY_OPENMETRICS_ALLOW_CIDR", r.OpenmetricsAllowCIDR, "not a CIDR range", "one range such as 10.0.0.0/8 or fd00::/8 (Prosody takes a single range), or empty")
		} else {
			s.OpenmetricsAllowCIDR = c
		}
	}
}

// addressList reads comma-separated IP addresses, and CIDR ranges when cidr is true. An
// address is written in Go's canonical form (lowercase, IPv6 compressed): Prosody compares
// the text of the client address with each entry, and writes client addresses that way.
func (p *parser) addressList(name, val string, cidr bool) []string {
	accepted := "IP addresses such as 10.0.0.5 or fd00::5, comma-separated"
	if cidr {
		accepted = "IP addresses or CIDR ranges such as 10.0.0.5 or 10.0.0.0/8, comma-separated"
	}
	items, hasEmpty := splitList(val)
	if hasEmpty {
		p.problem(name, val, "empty item in the list", accepted)
	}
	var out []string
	for _, item := range items {
		if ip := net.ParseIP(item); ip != nil {
			out = append(out, ip.String())
			continue
		}
		if _, _, err := net.ParseCIDR(item); cidr && err == nil {
			out = append(out, item)
			continue
		}
		what := "an IP address"
		if cidr {
			what = "an IP address or CIDR range"
		}
		p.problem(name, item, "not "+what, accepted)
	}
	return out
}

// externalURL checks a public base URL: absolute, http or https, with a host and no user,
// query or fragment (Prosody appends each service's path to it).
func (p *parser) externalURL(name, val string) string {
	const accepted = "an absolute http or https URL such as https://xmpp.example.org/ (a path prefix is allowed), or empty"
	v := strings.TrimSpace(val)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	var msg string
	switch {
	case err != nil:
		msg = "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		msg = fmt.Sprintf("scheme %q is not http or https", u.Scheme)
	case u.Hostname() == "":
		msg = "no host name"
	case u.User != nil:
		msg = "has a user name or password"
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(v, "?#"):
		msg = "has a query or fragment"
	}
	if msg != "" {
		p.problem(name, val, msg, accepted)
		return ""
	}
	return v
}
