package settings

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoad: no input crashes Load, and the database password never reaches an error or warning.
// The password is the fuzz string; other variables are set to invalid values (and to a second
// fuzz string) so there is plenty of error text. The text must be exactly what the same input
// gives with a different password: nothing in it depends on the secret's value.
func FuzzLoad(f *testing.F) {
	f.Add("hunter22", "mysql")
	f.Add("p@ss,word", "a@localhost")
	f.Add("PROSODY_STORAGE", "PROSODY_STORAGE")
	f.Add("secret\n", "-1d")
	f.Add("xn--", "xn--mnchen-3ya.de,,")
	f.Add("!a@b", "!a@b/c")
	f.Add(":5282", ":5282")
	f.Fuzz(func(t *testing.T, secret, other string) {
		if strings.ContainsRune(secret, 0) || strings.ContainsRune(other, 0) {
			return // an environment cannot hold NUL
		}
		environ := func(pw string) []string {
			return []string{
				"PROSODY_DB_PASSWORD=" + pw,
				"PROSODY_ADMIN_PASSWORD=" + pw,
				"PROSODY_STORAGE=" + other, "PROSODY_DOMAIN=" + other, "PROSODY_ADMINS=" + other,
				"PROSODY_FEATURES=" + other, "PROSODY_FAST_TOKEN_TTL=" + other, "PROSODY_HTTP_UPLOAD_SIZE_LIMIT=" + other,
				"PROSODY_HEALTH_LISTEN=" + other, "PROSODY_C2S_PORT=" + other, "PROSODY_FEATURES_X=" + other,
				"PROSODY_PROFILE=" + other, "PROSODY_EXTRA_MODULES=" + other, "PROSODY_WATCH=maybe",
				"PROSODY_ZZ_" + other + "=" + pw, // an unknown (maybe mistyped secret) name: value never shown
				"PROSODY_DB_PASS=" + pw,          // deprecated name of the secret, set together with the new one
			}
		}
		text := func(pw string) string {
			_, warns, err := Load(environ(pw))
			var b strings.Builder
			if err != nil {
				var ps *Problems
				if !errors.As(err, &ps) {
					t.Fatalf("error is %T, not *Problems: %v", err, err)
				}
				b.WriteString(err.Error())
			}
			for _, w := range warns {
				b.WriteString("\n" + w.String())
			}
			return b.String()
		}
		got := text(secret)
		if len(secret) < 4 {
			return
		}
		baseline := text("0000-other-password")
		if got != baseline {
			t.Fatalf("error text depends on the secret\nwith secret:\n%s\nwith another:\n%s", got, baseline)
		}
		if strings.Contains(got, secret) && !strings.Contains(baseline, secret) {
			t.Fatalf("secret %q in:\n%s", secret, got)
		}
	})
}
