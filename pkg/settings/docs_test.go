package settings

import (
	"bufio"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsageListsEveryVariable(t *testing.T) {
	var b strings.Builder
	if err := Usage(&b); err != nil {
		t.Fatal(err)
	}
	vars, _ := variables()
	lines := strings.Split(b.String(), "\n")
	for _, v := range vars {
		found := false
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) > 0 && f[0] == v.Key && strings.Contains(l, v.Desc) && (v.Default == "" || f[1] == v.Default) {
				found = true
			}
		}
		if !found {
			t.Errorf("usage has no line for %s with default %q", v.Key, v.Default)
		}
	}
	if !strings.Contains(b.String(), "PROSODY_DB_PASSWORD_FILE") {
		t.Errorf("usage does not mention the _FILE form")
	}
}

func TestMarkdown(t *testing.T) {
	var b strings.Builder
	if err := Markdown(&b); err != nil {
		t.Fatal(err)
	}
	vars, _ := variables()
	out := b.String()
	if !strings.HasPrefix(out, "| Variable | Default | Description |\n|---|---|---|\n") {
		t.Errorf("no table header:\n%s", out[:100])
	}
	for _, v := range vars {
		row := "| `" + v.Key + "` | "
		if v.Default != "" {
			row += "`" + v.Default + "`"
		}
		if !strings.Contains(out, row+" | ") {
			t.Errorf("no row %q", row)
		}
	}
	var again strings.Builder
	_ = Markdown(&again)
	if again.String() != out {
		t.Errorf("Markdown is not deterministic")
	}
}

// parseDotEnv reads KEY=VALUE lines, skipping comments, as docker compose does for these files.
func parseDotEnv(t *testing.T, text string) (environ []string, set map[string]string) {
	t.Helper()
	set = map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("bad .env line %q", l)
		}
		set[k] = v
		environ = append(environ, l)
	}
	return environ, set
}

// TestGenerateLoads: every generated .env file loads without problems, mentions every
// variable, and sets the values its environment calls for.
func TestGenerateLoads(t *testing.T) {
	vars, _ := variables()
	pwFile := writeFile(t, t.TempDir(), "db_password", "generated-test\n")
	for _, profile := range []string{"minimal", "standard", "enterprise", "development", "my-own"} {
		for _, env := range environments() {
			t.Run(profile+"/"+env, func(t *testing.T) {
				var b strings.Builder
				if err := Generate(&b, profile, env); err != nil {
					t.Fatal(err)
				}
				text := b.String()
				for _, v := range vars {
					if !strings.Contains(text, v.Key+"=") || !strings.Contains(text, "# "+v.Desc+"\n") {
						t.Errorf("%s missing or undescribed", v.Key)
					}
				}
				environ, set := parseDotEnv(t, text)
				if set["PROSODY_PROFILE"] != profile || set["PROSODY_ENVIRONMENT"] != env {
					t.Errorf("profile/environment = %q/%q", set["PROSODY_PROFILE"], set["PROSODY_ENVIRONMENT"])
				}
				if _, ok := set["PROSODY_DB_PASSWORD"]; ok {
					t.Errorf("a secret value was written")
				}
				for i, kv := range environ {
					if strings.HasPrefix(kv, "PROSODY_DB_PASSWORD_FILE=") {
						environ[i] = "PROSODY_DB_PASSWORD_FILE=" + filepath.Clean(pwFile)
					}
				}
				s, _, err := Load(environ)
				if err != nil {
					t.Fatalf("generated file does not load:\n%v\n%s", err, text)
				}
				switch env {
				case "production", "staging":
					if s.AllowRegistration || s.TLSAllowSelfSigned || s.LogLevel != "info" || s.Domains()[0] == "localhost" || len(s.Admins) == 0 {
						t.Errorf("%s: registration %v self-signed %v level %q domains %q", env, s.AllowRegistration, s.TLSAllowSelfSigned, s.LogLevel, s.Domains())
					}
				case "development":
					if !s.AllowRegistration || !s.TLSAllowSelfSigned || s.LogLevel != "debug" || s.Domains()[0] != "localhost" {
						t.Errorf("development: registration %v self-signed %v level %q domains %q", s.AllowRegistration, s.TLSAllowSelfSigned, s.LogLevel, s.Domains())
					}
				}
				if profile == "enterprise" && (s.Storage != "postgres" || s.DBPassword.Reveal() != "generated-test") {
					t.Errorf("enterprise storage %q", s.Storage)
				}
			})
		}
	}
}

func TestGenerateRejects(t *testing.T) {
	var b strings.Builder
	if err := Generate(&b, "Bad Profile", "production"); err == nil || !strings.Contains(err.Error(), "profile") {
		t.Errorf("bad profile: %v", err)
	}
	if err := Generate(&b, "standard", "prod"); err == nil || !strings.Contains(err.Error(), "development, staging, production, testing") {
		t.Errorf("bad environment: %v", err)
	}
	if b.Len() != 0 {
		t.Errorf("wrote output on error")
	}
}
