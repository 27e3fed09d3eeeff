package settings

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseBool(t *testing.T) {
	for _, in := range []string{"true", "TRUE", "True", "1", "yes", "YES", "on", "On", " true "} {
		if b, err := ParseBool(in); err != nil || !b {
			t.Errorf("ParseBool(%q) = %v, %v; want true", in, b, err)
		}
	}
	for _, in := range []string{"false", "FALSE", "0", "no", "No", "off", "OFF"} {
		if b, err := ParseBool(in); err != nil || b {
			t.Errorf("ParseBool(%q) = %v, %v; want false", in, b, err)
		}
	}
	for _, in := range []string{"", "2", "y", "n", "enabled", "t", "truee"} {
		if _, err := ParseBool(in); err == nil {
			t.Errorf("ParseBool(%q): no error", in)
		}
	}
}

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	good := map[string]time.Duration{
		"0": 0, "10s": 10 * time.Second, "100ms": 100 * time.Millisecond, "1h30m": 90 * time.Minute,
		"21d": 21 * day, "2w": 14 * day, "1w2d3h": 9*day + 3*time.Hour, "1.5d": 36 * time.Hour,
		"+5m": 5 * time.Minute, " 7d ": 7 * day, "1500us": 1500 * time.Microsecond,
	}
	for in, want := range good {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10", "d", "-5s", "1y", "3 days", "1d-2h", "1..5d", "99999999999w", "10s10", "1e3s"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v; want an error", in, got)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"1048576": 1048576, "50MB": 50_000_000, "10MiB": 10 << 20, "10mib": 10 << 20, "1KB": 1000,
		"1KiB": 1024, "1.5GB": 1_500_000_000, "2GiB": 2 << 30, "1TB": 1e12, "512B": 512, "64 KiB": 64 << 10, "3k": 3000,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "-1MB", "10XB", "0", "0.1", "1e9", "10 MB MB", "9999999999TiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %v; want an error", in, got)
		}
	}
}

func TestCheckDomain(t *testing.T) {
	for _, d := range []string{"localhost", "example.org", "a.b.c.d", "xn--mnchen-3ya.de", "x1-y2.example", "1.2.3.4"} {
		if err := checkDomain(d); err != nil {
			t.Errorf("checkDomain(%q): %v", d, err)
		}
	}
	for _, d := range []string{"", ".", "a..b", ".a", "-a.org", "a-.org", "a_b.org", "a b.org", "münchen.de", "Ex ample", "a.org."} {
		if err := checkDomain(d); err == nil {
			t.Errorf("checkDomain(%q): no error", d)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"PROSODY_PROFILE", "PROSODY_STORAGE", "PROSODY_DOMAIN", "PROSODY_ADMINS", "PROSODY_DB_PASSWORD_FILE"}
	cases := map[string]string{
		"PROSODY_PROFIL":          "PROSODY_PROFILE",
		"PROSODY_STORGAE":         "PROSODY_STORAGE",
		"prosody_domain":          "PROSODY_DOMAIN",
		"PROSODY_ADMIN":           "PROSODY_ADMINS",
		"PROSODY_DB_PASSWORDFILE": "PROSODY_DB_PASSWORD_FILE",
		"PROSODY_NOTHING_LIKE_IT": "",
		"XYZ":                     "",
	}
	for in, want := range cases {
		if got := Suggest(in, known); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Suggest("x", nil); got != "" {
		t.Errorf("no candidates: %q", got)
	}
	if got := Suggest("auth/fsat", []string{"auth/fast", "web/admin"}); got != "auth/fast" {
		t.Errorf("feature name: %q", got)
	}
}

func TestEnvKey(t *testing.T) {
	cases := map[string]string{
		"DBHost": "DB_HOST", "HTTPSPort": "HTTPS_PORT", "C2sPort": "C2S_PORT", "FastTokenTTL": "FAST_TOKEN_TTL",
		"FeaturesAuthSasl2": "FEATURES_AUTH_SASL2", "UID": "UID", "Profile": "PROFILE", "TLSAllowSelfSigned": "TLS_ALLOW_SELF_SIGNED",
	}
	for in, want := range cases {
		if got := envKey(in); got != want {
			t.Errorf("envKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLoadIsFast guards the <1 ms budget of a typical Load (measured as the best of several runs,
// so a busy machine does not fail it).
func TestLoadIsFast(t *testing.T) {
	environ := []string{"PROSODY_DOMAIN=example.org", "PROSODY_ADMINS=admin@example.org", "PROSODY_FEATURES=+web/admin"}
	best := time.Hour
	for range 20 {
		start := time.Now()
		if _, _, err := Load(environ); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	if best > time.Millisecond {
		t.Errorf("Load took %v at best; budget 1ms", best)
	}
}

// TestLoadLargeInput: huge values (long lists, a long unknown name) stay fast: no quadratic
// list checks, and Suggest skips candidates whose length rules out a typo.
func TestLoadLargeInput(t *testing.T) {
	var items []string
	for i := range 20000 {
		items = append(items, "a"+strconv.Itoa(i)+"@a"+strconv.Itoa(i))
	}
	for _, v := range []string{strings.Repeat("x", 100000), strings.Join(items, ","), strings.Repeat("+a/b,", 20000)} {
		start := time.Now()
		_, _, err := Load([]string{"PROSODY_DOMAIN=" + v, "PROSODY_ADMINS=" + v, "PROSODY_FEATURES=" + v,
			"PROSODY_ZZ_" + v + "=1", "PROSODY_FAST_TOKEN_TTL=" + v, "PROSODY_EXTRA_MODULES=" + v})
		if err == nil {
			t.Errorf("no problems reported for %d-byte garbage", len(v))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Load of %d-byte values took %v; want well under 2s", len(v), d)
		}
	}
}
