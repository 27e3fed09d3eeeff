package settings

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// profileAccepted is what PROSODY_PROFILE accepts, for messages.
const profileAccepted = "minimal, standard, enterprise, development, or the name of a custom profile (" + pfe.NameRule + ")"

// profile checks the form of a profile name with pfe.CheckName, the rule `profiles create`
// and the config tree use too; the PFE engine checks that it exists.
func (p *parser) profile(val string) string {
	if val == "" {
		p.problem("PROSODY_PROFILE", "", "set but empty", profileAccepted)
		return ""
	}
	if pfe.CheckName("profile", val) != nil {
		p.problem("PROSODY_PROFILE", val, "not a profile name", profileAccepted)
		return ""
	}
	return val
}

// isName reports whether s matches [a-z0-9][a-z0-9<extra>]*.
func isName(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			continue
		}
		if i == 0 || !strings.ContainsRune(extra, rune(c)) {
			return false
		}
	}
	return s != ""
}

func (p *parser) domainList(val string) []string {
	const name, acc = "PROSODY_DOMAIN", "domain names separated by commas, e.g. example.org,chat.example.org"
	items, hasEmpty := splitList(val)
	if len(items) == 0 {
		p.problem(name, val, "no domain given", acc)
		return nil
	}
	if hasEmpty {
		p.problem(name, val, "empty item in the list", acc)
	}
	var out []string
	seen := make(map[string]bool, len(items))
	for _, d := range items {
		d = lowerASCII(d)
		if err := checkDomain(d); err != nil {
			p.problem(name, d, err.Error(), acc)
			continue
		}
		if seen[d] {
			p.problem(name, d, "listed twice", acc)
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	return out
}

// admins checks each admin JID: a bare localpart@domain on a served domain, or marked remote
// with RemoteAdminMarker.
func (p *parser) admins(val string, served []string) []string {
	const name = "PROSODY_ADMINS"
	const acc = "bare JIDs localpart@domain separated by commas; prefix ! for a JID on another server (!alice@example.net)"
	items, hasEmpty := splitList(val)
	if hasEmpty {
		p.problem(name, val, "empty item in the list", acc)
	}
	isServed := make(map[string]bool, len(served))
	for _, d := range served {
		isServed[d] = true
	}
	onServed := "a JID on a domain in PROSODY_DOMAIN"
	if len(served) <= 5 {
		onServed = "a JID on " + strings.Join(served, ", ")
	}
	var out []string
	seen := make(map[string]bool, len(items))
	for _, item := range items {
		jid, remote := strings.CutPrefix(item, RemoteAdminMarker)
		jid = strings.TrimSpace(jid)
		if strings.Contains(jid, "/") {
			p.problem(name, item, "not a bare JID (has a /resource)", acc)
			continue
		}
		local, domain, ok := strings.Cut(jid, "@")
		if !ok {
			p.problem(name, item, "not a JID (no @)", acc)
			continue
		}
		local, domain = lowerASCII(local), lowerASCII(domain)
		if err := checkLocalpart(local); err != nil {
			p.problem(name, item, err.Error(), acc)
			continue
		}
		if err := checkDomain(domain); err != nil {
			p.problem(name, item, "domain: "+err.Error(), acc)
			continue
		}
		if !remote && !isServed[domain] {
			p.problem(name, item, fmt.Sprintf("domain %s is not served (PROSODY_DOMAIN)", domain),
				onServed+", or !"+local+"@"+domain+" for an admin on another server")
			continue
		}
		if j := local + "@" + domain; !seen[j] {
			seen[j] = true
			out = append(out, j)
		}
	}
	return out
}

// toggles collects the PROSODY_FEATURES_* variables, checks they are booleans and writes them
// as "true" or "false" (the form the PFE engine reads).
func (p *parser) toggles() map[string]string {
	out := make(map[string]string)
	aliases := designToggleAliases()
	for _, k := range slices.Sorted(maps.Keys(p.env)) {
		v := p.env[k]
		_, alias := aliases[k]
		if !strings.HasPrefix(k, featuresPrefix) && !alias || v == "" {
			continue
		}
		if _, ok := DesignRefusals()[k]; ok {
			continue // reported by unknown
		}
		b, err := ParseBool(v)
		if err != nil {
			p.problem(k, v, err.Error(), boolAccepted+", or empty to let the profile decide")
			continue
		}
		out[k] = strconv.FormatBool(b)
	}
	// A design name of a toggle (PROSODY_AUTH_FAST_TOKENS) is that toggle.
	for _, from := range slices.Sorted(maps.Keys(aliases)) {
		b, ok := out[from]
		if !ok {
			continue
		}
		to := aliases[from]
		delete(out, from)
		if have, set := out[to]; set && have != b {
			p.problem(from, p.env[from], "contradicts "+to+"="+have+": the design's "+from+" is the toggle "+to, "one of the two, or both the same")
			continue
		}
		out[to] = b
	}
	return out
}

func (p *parser) features(val string) []FeatureChange {
	const name, acc = "PROSODY_FEATURES", "+group/feature or -group/feature separated by commas, e.g. +web/admin,-mobile/push"
	items, hasEmpty := splitList(val)
	if hasEmpty {
		p.problem(name, val, "empty item in the list", acc)
	}
	var out []FeatureChange
	seen := make(map[string]bool)
	for _, item := range items {
		fc := FeatureChange{Enable: true}
		switch item[0] {
		case '+':
			fc.Name = item[1:]
		case '-':
			fc.Name, fc.Enable = item[1:], false
		default:
			fc.Name = item
		}
		if slices.Contains(designProfiles(), fc.Name) {
			p.problem(name, item, designFeatureSet(fc.Name).Message(), acc)
			continue
		}
		if pfe.CheckName("feature", fc.Name) != nil {
			p.problem(name, item, "not a feature name", acc+"; each name is "+pfe.NameRule)
			continue
		}
		if prev, ok := seen[fc.Name]; ok {
			if prev != fc.Enable {
				p.problem(name, item, fmt.Sprintf("%s is both enabled and disabled", fc.Name), acc)
			}
			continue
		}
		seen[fc.Name] = fc.Enable
		out = append(out, fc)
	}
	return out
}

func (p *parser) modules(val string) []string {
	const name, acc = "PROSODY_EXTRA_MODULES", "Prosody module names without mod_, separated by commas, e.g. http_upload,cloud_notify"
	items, hasEmpty := splitList(val)
	if hasEmpty {
		p.problem(name, val, "empty item in the list", acc)
	}
	var out []string
	seen := make(map[string]bool, len(items))
	for _, m := range items {
		switch {
		case strings.HasPrefix(m, "mod_"):
			p.problem(name, m, "write the module name without mod_", acc)
		case !isName(m, "_-"):
			p.problem(name, m, "not a module name", acc)
		case !seen[m]:
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// healthListen sets s.HealthListen and returns its port (0 when off or invalid).
func (p *parser) healthListen(s *Settings, val string) int {
	const name, acc = "PROSODY_HEALTH_LISTEN", "[host]:port such as :5282 or 127.0.0.1:5282, or off"
	if strings.EqualFold(val, "off") {
		return 0
	}
	if val == "" {
		p.problem(name, "", "set but empty", acc)
		return 0
	}
	host, port, err := net.SplitHostPort(val)
	if err != nil {
		p.problem(name, val, "not a listen address", acc)
		return 0
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil && checkDomain(lowerASCII(host)) != nil {
		p.problem(name, val, "not a host name or IP address", acc)
		return 0
	}
	n, err := parsePort(port)
	if err != nil || strconv.Itoa(n) != port {
		p.problem(name, val, "bad port", acc)
		return 0
	}
	s.HealthListen = val
	return n
}

// portConflicts reports two services on one port.
func (p *parser) portConflicts(s *Settings, healthPort int) {
	used := make(map[int]string)
	for _, e := range []struct {
		name string
		port int
	}{
		{"PROSODY_C2S_PORT", s.C2SPort}, {"PROSODY_S2S_PORT", s.S2SPort},
		{"PROSODY_HTTP_PORT", s.HTTPPort}, {"PROSODY_HTTPS_PORT", s.HTTPSPort},
		{"PROSODY_HEALTH_LISTEN", healthPort},
		{"PROSODY_ACME_HTTP_PORT", acmePort(s.ACME, "http-01", s.ACME.HTTPPort)},
		{"PROSODY_ACME_TLS_PORT", acmePort(s.ACME, "tls-alpn-01", s.ACME.TLSPort)},
	} {
		if e.port == 0 {
			continue // unset, off or already reported
		}
		if other, ok := used[e.port]; ok {
			p.problem(e.name, strconv.Itoa(e.port), "port already used by "+other, "a port no other service uses")
			continue
		}
		used[e.port] = e.name
	}
}

// environmentWarnings flags values that are accepted but risky for the environment.
func (p *parser) environmentWarnings(s *Settings) {
	if s.Environment != "production" && s.Environment != "staging" {
		return
	}
	if s.AllowRegistration {
		p.warn("PROSODY_ALLOW_REGISTRATION", "open registration in "+s.Environment+" invites spam accounts; set it to false unless intended")
	}
	if s.TLSAllowSelfSigned {
		p.warn("PROSODY_TLS_ALLOW_SELF_SIGNED", "self-signed certificates in "+s.Environment+" are refused by other servers and clients; mount real certificates in PROSODY_CERTS_DIR")
	}
	if s.LogLevel == "debug" {
		p.warn("PROSODY_LOG_LEVEL", "debug logging in "+s.Environment+" is verbose and may log personal data; use info")
	}
	if slices.Contains(s.domains, "localhost") {
		p.warn("PROSODY_DOMAIN", "localhost in "+s.Environment+" cannot be reached by clients or servers; set your real domain")
	}
}

// interfaces reads a comma-separated list of listen addresses for Prosody's
// `interfaces` option.
func (p *parser) interfaces(name, val string) []string {
	const accepted = "*, ::, or IP addresses such as 127.0.0.1, comma-separated"
	if strings.TrimSpace(val) == "" {
		return nil
	}
	var out []string
	for _, f := range strings.Split(val, ",") {
		f = strings.TrimSpace(f)
		if f != "*" && f != "::" && net.ParseIP(f) == nil {
			p.problem(name, val, fmt.Sprintf("%q is not an IP address", f), accepted)
			continue
		}
		out = append(out, f)
	}
	return out
}

// minStatusTokenLen is the shortest PROSODY_STATUS_TOKEN accepted: a token anyone on the
// network may try against /status must not be guessable.
const minStatusTokenLen = 16

// statusToken checks PROSODY_STATUS_TOKEN: empty (loopback only), or a token of at least
// minStatusTokenLen visible ASCII characters, as an HTTP Authorization header carries it.
// The value is never echoed.
func (p *parser) statusToken(tok Secret) Secret {
	const name = "PROSODY_STATUS_TOKEN"
	v := tok.Reveal()
	if v == "" {
		return tok
	}
	acc := fmt.Sprintf("at least %d visible ASCII characters without spaces, e.g. the output of `openssl rand -hex 32`; or unset for loopback-only /status", minStatusTokenLen)
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			p.problem(name, "", "holds a space, control or non-ASCII character", acc)
			return Secret{}
		}
	}
	if len(v) < minStatusTokenLen {
		p.problem(name, "", fmt.Sprintf("too short (%d characters)", len(v)), acc)
		return Secret{}
	}
	return tok
}

// watchdogTimeout reads PROSODY_WATCHDOG_TIMEOUT: 0 disables the watchdog, otherwise at
// least a second (the probe itself takes up to 2s to call a silent Prosody failed).
func (p *parser) watchdogTimeout(val string) time.Duration {
	const name = "PROSODY_WATCHDOG_TIMEOUT"
	d := p.duration(name, val, 0)
	if d > 0 && d < time.Second {
		p.problem(name, val, "too short", "at least 1s, or 0 to disable the watchdog")
	}
	return d
}
