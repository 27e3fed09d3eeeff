package settings

import (
	"slices"
	"testing"
	"time"
)

// TestAcmeSettings: ACME is off unless asked, the named directories resolve,
// and each bad value is reported with its variable.
func TestAcmeSettings(t *testing.T) {
	s, _ := mustLoad(t)
	if s.ACME.Enabled || s.ACME.Directory != LetsEncryptDirectory || s.ACME.HTTPPort != 80 ||
		!slices.Equal(s.ACME.Challenges, []string{"http-01"}) {
		t.Errorf("defaults = %+v; want off, Let's Encrypt, port 80, http-01", s.ACME)
	}
	s, _ = mustLoad(t, "PROSODY_ACME_EMAIL=admin@example.org", "PROSODY_ACME_DIRECTORY=letsencrypt-staging",
		"PROSODY_ACME_CHALLENGES=tls-alpn-01, http-01", "PROSODY_ACME_RENEW_BEFORE=720h")
	if !s.ACME.Enabled || s.ACME.Directory != LetsEncryptStagingDirectory ||
		!slices.Equal(s.ACME.Challenges, []string{"tls-alpn-01", "http-01"}) || s.ACME.RenewBefore != 720*time.Hour {
		t.Errorf("ACME = %+v; want on by the e-mail, staging, both challenges, 720h", s.ACME)
	}
	s, _ = mustLoad(t, "PROSODY_ACME_EMAIL=admin@example.org", "PROSODY_ACME=false")
	if s.ACME.Enabled {
		t.Error("PROSODY_ACME=false with an e-mail: ACME is on; want off")
	}
	s, _ = mustLoad(t, "PROSODY_ACME=true", "PROSODY_ACME_DIRECTORY=https://127.0.0.1:14000/dir")
	if !s.ACME.Enabled || s.ACME.Directory != "https://127.0.0.1:14000/dir" {
		t.Errorf("ACME = %+v; want on, with the URL", s.ACME)
	}
	hmac := writeFile(t, t.TempDir(), "hmac", "c2VjcmV0LWhtYWM\n")
	s, _ = mustLoad(t, "PROSODY_ACME=true", "PROSODY_ACME_EAB_KID=kid-1", "PROSODY_ACME_EAB_HMAC_KEY_FILE="+hmac)
	if s.ACME.EABHmacKey.Reveal() != "c2VjcmV0LWhtYWM" {
		t.Errorf("EAB HMAC key from its _FILE = %q", s.ACME.EABHmacKey.Reveal())
	}

	for _, tc := range []struct {
		env  []string
		want string // the variable named by the problem
	}{
		{[]string{"PROSODY_ACME=maybe"}, "PROSODY_ACME"},
		{[]string{"PROSODY_ACME_EMAIL=not-an-address"}, "PROSODY_ACME_EMAIL"},
		{[]string{"PROSODY_ACME_DIRECTORY=http://ca.example/dir"}, "PROSODY_ACME_DIRECTORY"},
		{[]string{"PROSODY_ACME_DIRECTORY=zerossl"}, "PROSODY_ACME_DIRECTORY"},
		{[]string{"PROSODY_ACME_CA_FILE=relative.pem"}, "PROSODY_ACME_CA_FILE"},
		{[]string{"PROSODY_ACME_EAB_KID=kid-1"}, "PROSODY_ACME_EAB_HMAC_KEY"},
		{[]string{"PROSODY_ACME_CHALLENGES=dns-01"}, "PROSODY_ACME_CHALLENGES"},
		{[]string{"PROSODY_ACME_HTTP_PORT=0"}, "PROSODY_ACME_HTTP_PORT"},
		{[]string{"PROSODY_ACME_RETRY_BACKOFF=10ms"}, "PROSODY_ACME_RETRY_BACKOFF"},
		{[]string{"PROSODY_ACME=true", "PROSODY_ACME_HTTP_PORT=5282"}, "PROSODY_ACME_HTTP_PORT"},
	} {
		list := problemsOf(t, tc.env...)
		var names []string
		for _, p := range list {
			names = append(names, p.Var)
		}
		if !slices.Contains(names, tc.want) {
			t.Errorf("%v: problems name %v; want %s", tc.env, names, tc.want)
		}
	}
}
