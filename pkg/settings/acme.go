package settings

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// acmeChallenges are the challenge types PROSODY_ACME_CHALLENGES accepts.
func acmeChallenges() []string { return []string{"http-01", "tls-alpn-01"} }

// acme reads the PROSODY_ACME_* block. Every value is checked even when ACME is
// off, so a typo is reported before someone turns it on.
func (p *parser) acme(r *Env) AcmeSettings {
	a := AcmeSettings{Email: strings.TrimSpace(r.AcmeEmail)}
	switch {
	case r.Acme != "":
		a.Enabled = p.boolean("PROSODY_ACME", r.Acme)
	default:
		a.Enabled = a.Email != ""
	}
	if a.Email != "" {
		at := strings.LastIndexByte(a.Email, '@')
		if at <= 0 || at == len(a.Email)-1 || strings.ContainsAny(a.Email, " \t,;<>\"") {
			p.problem("PROSODY_ACME_EMAIL", a.Email, "not an e-mail address", "an address such as admin@example.org, or empty")
		}
	}
	switch d := strings.TrimSpace(r.AcmeDirectory); d {
	case "letsencrypt":
		a.Directory = LetsEncryptDirectory
	case "letsencrypt-staging":
		a.Directory = LetsEncryptStagingDirectory
	default:
		const acc = "letsencrypt, letsencrypt-staging, or an https:// URL of an ACME directory"
		u, err := url.Parse(d)
		switch {
		case d == "":
			p.problem("PROSODY_ACME_DIRECTORY", "", "set but empty", acc)
		case err != nil || u.Scheme != "https" || u.Host == "":
			p.problem("PROSODY_ACME_DIRECTORY", d, "not a known CA name or an https:// URL", acc)
		default:
			a.Directory = d
		}
	}
	a.CAFile = p.path("PROSODY_ACME_CA_FILE", r.AcmeCAFile, true)
	a.EABKid = strings.TrimSpace(r.AcmeEABKid)
	a.EABHmacKey = r.AcmeEABHmacKey
	if (a.EABKid == "") != !a.EABHmacKey.IsSet() {
		name := "PROSODY_ACME_EAB_KID"
		if a.EABKid != "" {
			name = "PROSODY_ACME_EAB_HMAC_KEY"
		}
		p.problem(name, "", "empty while the other External Account Binding variable is set",
			"both PROSODY_ACME_EAB_KID and PROSODY_ACME_EAB_HMAC_KEY (as the CA gives them), or neither")
	}
	for _, c := range strings.Split(r.AcmeChallenges, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		switch {
		case c == "":
			continue
		case !slices.Contains(acmeChallenges(), c):
			p.problem("PROSODY_ACME_CHALLENGES", r.AcmeChallenges, "\""+c+"\" is not a challenge type", "http-01, tls-alpn-01, comma-separated")
		case !slices.Contains(a.Challenges, c):
			a.Challenges = append(a.Challenges, c)
		}
	}
	if len(a.Challenges) == 0 && r.AcmeChallenges == "" {
		p.problem("PROSODY_ACME_CHALLENGES", "", "set but empty", "http-01, tls-alpn-01, comma-separated")
	}
	a.HTTPPort = p.port("PROSODY_ACME_HTTP_PORT", r.AcmeHTTPPort)
	a.TLSPort = p.port("PROSODY_ACME_TLS_PORT", r.AcmeTLSPort)
	a.RenewBefore = p.duration("PROSODY_ACME_RENEW_BEFORE", r.AcmeRenewBefore, 0)
	a.RetryBackoff = p.duration("PROSODY_ACME_RETRY_BACKOFF", r.AcmeRetryBackoff, time.Second)
	return a
}

// acmePort is the port an ACME challenge listens on, for the port conflict
// check: 0 (not checked) when ACME is off or the challenge is not used.
func acmePort(a AcmeSettings, challenge string, port int) int {
	if !a.Enabled || !slices.Contains(a.Challenges, challenge) {
		return 0
	}
	return port
}
