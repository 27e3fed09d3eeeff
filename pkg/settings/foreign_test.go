package settings

import (
	"strings"
	"testing"
)

// The official image's and Snikket's variables that mean exactly what one of ours means are
// accepted, each with a warning naming ours; set together with ours they are a problem.
func TestForeignNamesAccepted(t *testing.T) {
	for _, tc := range []struct {
		env    []string
		check  func(*Settings) bool
		warnOn string
		names  string
	}{
		{[]string{"SNIKKET_DOMAIN=chat.example.org"}, func(s *Settings) bool { return s.Domains()[0] == "chat.example.org" }, "SNIKKET_DOMAIN", "PROSODY_DOMAIN"},
		{[]string{"SNIKKET_LOGLEVEL=debug"}, func(s *Settings) bool { return s.LogLevel == "debug" }, "SNIKKET_LOGLEVEL", "PROSODY_LOG_LEVEL"},
		{[]string{"SNIKKET_TLS_PROFILE=modern"}, func(s *Settings) bool { return s.TLSProfile == "modern" }, "SNIKKET_TLS_PROFILE", "PROSODY_TLS_PROFILE"},
		{[]string{"PROSODY_SQL_HOST=db", "PROSODY_STORAGE=postgres", "PROSODY_SQL_PASSWORD=pw"}, func(s *Settings) bool { return s.DBHost == "db" && s.DBPassword.Reveal() == "pw" }, "PROSODY_SQL_HOST", "PROSODY_DB_HOST"},
		{[]string{"PROSODY_SQL_DB=xmpp"}, func(s *Settings) bool { return s.DBName == "xmpp" }, "PROSODY_SQL_DB", "PROSODY_DB_NAME"},
		{[]string{"PROSODY_SQL_USERNAME=u"}, func(s *Settings) bool { return s.DBUser == "u" }, "PROSODY_SQL_USERNAME", "PROSODY_DB_USER"},
		{[]string{"PROSODY_ENABLE_MODULES=motd"}, func(s *Settings) bool { return len(s.ExtraModules) == 1 && s.ExtraModules[0] == "motd" }, "PROSODY_ENABLE_MODULES", "PROSODY_EXTRA_MODULES"},
	} {
		t.Run(tc.warnOn, func(t *testing.T) {
			s, warnings, err := Load(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				t.Errorf("%v not applied", tc.env)
			}
			found := false
			for _, w := range warnings {
				if w.Var == tc.warnOn && strings.Contains(w.Msg, "rename it to "+tc.names) {
					found = true
				}
			}
			if !found {
				t.Errorf("no warning on %s naming %s: %v", tc.warnOn, tc.names, warnings)
			}
		})
	}
	if _, _, err := Load([]string{"SNIKKET_DOMAIN=a.example", "PROSODY_DOMAIN=b.example"}); err == nil || !strings.Contains(err.Error(), "SNIKKET_DOMAIN") {
		t.Errorf("both names set: err = %v", err)
	}
	// The official image's secret under its name is a secret here too (kept from hooks).
	if !strings.Contains(strings.Join(SecretVars(), ","), "PROSODY_SQL_PASSWORD") {
		t.Errorf("SecretVars lacks PROSODY_SQL_PASSWORD: %v", SecretVars())
	}
	// One without an exact equivalent says what to set instead.
	_, _, err := Load([]string{"PROSODY_SQL_DRIVER=PostgreSQL"})
	if err == nil || !strings.Contains(err.Error(), "PROSODY_STORAGE=postgres") {
		t.Errorf("PROSODY_SQL_DRIVER: err = %v", err)
	}
	// Other images' variables without a PROSODY_ prefix are not read at all.
	if _, _, err := Load([]string{"SNIKKET_ADMIN_EMAIL=a@example.org", "DOMAIN=x"}); err != nil {
		t.Errorf("unrelated variables: %v", err)
	}
}
