package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// problemsOf runs Load and returns its problems (nil when it succeeded).
func problemsOf(t *testing.T, environ ...string) []Problem {
	t.Helper()
	_, _, err := Load(environ)
	if err == nil {
		return nil
	}
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load error is %T, want *Problems: %v", err, err)
	}
	return ps.List
}

func mustLoad(t *testing.T, environ ...string) (*Settings, []Warning) {
	t.Helper()
	s, w, err := Load(environ)
	if err != nil {
		t.Fatalf("Load(%q): %v", environ, err)
	}
	return s, w
}

func TestLoadDefaults(t *testing.T) {
	s, _ := mustLoad(t, "PATH=/bin", "HOME=/root")
	if s.Profile != "standard" || s.Environment != "production" || s.Storage != "sqlite" {
		t.Errorf("profile/environment/storage = %q/%q/%q", s.Profile, s.Environment, s.Storage)
	}
	if got := s.Domains(); !slices.Equal(got, []string{"localhost"}) {
		t.Errorf("Domains() = %q", got)
	}
	if s.C2SPort != 5222 || s.S2SPort != 5269 || s.HTTPPort != 5280 || s.HTTPSPort != 5281 || s.DBPort != 5432 {
		t.Errorf("ports = %d %d %d %d %d", s.C2SPort, s.S2SPort, s.HTTPPort, s.HTTPSPort, s.DBPort)
	}
	if s.FastTokenTTL != 21*24*time.Hour || s.HTTPUploadSizeLimit != 10<<20 {
		t.Errorf("ttl %v, upload limit %d", s.FastTokenTTL, s.HTTPUploadSizeLimit)
	}
	if s.StopTimeout != 10*time.Second || s.RestartMax != 5 || s.RestartWindow != time.Minute ||
		s.RestartBackoff != time.Second || s.HealthInterval != 10*time.Second || s.WatchDebounce != 100*time.Millisecond {
		t.Errorf("supervisor durations wrong: %+v", s)
	}
	if s.HealthListen != ":5282" || !s.HealthEnabled() || !s.Watch || s.ReloadRestart != "auto" {
		t.Errorf("health/watch = %q %v %v %q", s.HealthListen, s.HealthEnabled(), s.Watch, s.ReloadRestart)
	}
	if s.UID != -1 || s.GID != -1 || s.LogFormat != "" || s.LogLevel != "info" || s.TLSProfile != "intermediate" {
		t.Errorf("uid %d gid %d format %q level %q tls %q", s.UID, s.GID, s.LogFormat, s.LogLevel, s.TLSProfile)
	}
	if s.ConfigDir != "/usr/share/prosody-pfe/config" || s.DataDir != "/var/lib/prosody" || s.HooksDir != "/docker-entrypoint.d" ||
		s.CustomDir != "/etc/prosody-pfe/custom" || s.RuntimeDir != "/run/prosody-pfe" || s.CertsDir != "/etc/prosody/certs" {
		t.Errorf("paths wrong: %+v", s)
	}
	if len(s.Toggles) != 0 || s.AllowRegistration || s.DBPassword.IsSet() {
		t.Errorf("toggles %v registration %v", s.Toggles, s.AllowRegistration)
	}
	if src := s.Source("PROSODY_DOMAIN"); src != SourceDefault {
		t.Errorf("source of PROSODY_DOMAIN = %q", src)
	}
}

func TestLoadValues(t *testing.T) {
	s, _ := mustLoad(t,
		"PROSODY_PROFILE=my-custom2", "PROSODY_ENVIRONMENT=development",
		"PROSODY_DOMAIN= Example.ORG , chat.example.org,xn--mnchen-3ya.de",
		"PROSODY_ADMINS=Admin@example.org, !ops@example.net,admin@example.org",
		"PROSODY_STORAGE=postgres", "PROSODY_DB_HOST=db.internal", "PROSODY_DB_PASSWORD=pw",
		"PROSODY_ALLOW_REGISTRATION=Yes", "PROSODY_RESOURCE_LIMITS=ON", "PROSODY_LEGACY_MODE=0",
		"PROSODY_FEATURES=+web/admin,-mobile/push,auth/fast", "PROSODY_FEATURES_AUTH_FAST=off", "PROSODY_FEATURES_NEW_THING=1",
		"PROSODY_FEATURES_WEB_ADMIN=",
		"PROSODY_FAST_TOKEN_TTL=1w2d", "PROSODY_HTTP_UPLOAD_SIZE_LIMIT=50MB", "PROSODY_EXTRA_MODULES=cloud_notify, http_upload",
		"PROSODY_HEALTH_LISTEN=127.0.0.1:9000", "PROSODY_UID=101", "PROSODY_GID=102", "PROSODY_RESTART=always",
		"PROSODY_DATA_DIR=/data/../data/prosody/", "PROSODY_WATCH=false",
	)
	if !slices.Equal(s.Domains(), []string{"example.org", "chat.example.org", "xn--mnchen-3ya.de"}) {
		t.Errorf("Domains() = %q", s.Domains())
	}
	if !slices.Equal(s.Admins, []string{"admin@example.org", "ops@example.net"}) {
		t.Errorf("Admins = %q", s.Admins)
	}
	if s.LogLevel != "debug" {
		t.Errorf("LogLevel in development = %q, want debug", s.LogLevel)
	}
	if !s.AllowRegistration || !s.ResourceLimits || s.LegacyMode || s.Watch {
		t.Errorf("booleans wrong")
	}
	want := []FeatureChange{{"web/admin", true}, {"mobile/push", false}, {"auth/fast", true}}
	if !slices.Equal(s.Features, want) {
		t.Errorf("Features = %v", s.Features)
	}
	if !reflect.DeepEqual(s.Toggles, map[string]string{"PROSODY_FEATURES_AUTH_FAST": "false", "PROSODY_FEATURES_NEW_THING": "true"}) {
		t.Errorf("Toggles = %v", s.Toggles)
	}
	if s.FastTokenTTL != 9*24*time.Hour || s.HTTPUploadSizeLimit != 50_000_000 {
		t.Errorf("ttl %v size %d", s.FastTokenTTL, s.HTTPUploadSizeLimit)
	}
	if !slices.Equal(s.ExtraModules, []string{"cloud_notify", "http_upload"}) || s.HealthListen != "127.0.0.1:9000" {
		t.Errorf("modules %q health %q", s.ExtraModules, s.HealthListen)
	}
	if s.UID != 101 || s.GID != 102 || s.RestartPolicy(true) != "always" || s.DataDir != "/data/prosody" {
		t.Errorf("uid %d gid %d restart %q data %q", s.UID, s.GID, s.RestartPolicy(true), s.DataDir)
	}
	if s.DBPassword.Reveal() != "pw" || s.Source("PROSODY_DB_PASSWORD") != SourceEnv {
		t.Errorf("password source %q", s.Source("PROSODY_DB_PASSWORD"))
	}
}

func TestRestartPolicyDefault(t *testing.T) {
	s, _ := mustLoad(t)
	if got := s.RestartPolicy(true); got != "on-failure" {
		t.Errorf("prosody: %q", got)
	}
	if got := s.RestartPolicy(false); got != "never" {
		t.Errorf("other command: %q", got)
	}
	s, _ = mustLoad(t, "PROSODY_HEALTH_LISTEN=OFF")
	if s.HealthEnabled() {
		t.Errorf("health listen off still enabled")
	}
}

// TestProblems: each bad value is reported naming its variable, with a message and accepted.
func TestProblems(t *testing.T) {
	cases := []struct {
		env     []string
		wantVar string
		want    string // substring of the problem line
	}{
		{[]string{"PROSODY_STORAGE=mysql"}, "PROSODY_STORAGE", `PROSODY_STORAGE="mysql": not a storage backend; accepted: internal, sqlite, postgres`},
		{[]string{"PROSODY_PROFILE=Big_One"}, "PROSODY_PROFILE", "not a profile name"},
		{[]string{"PROSODY_PROFILE=-x"}, "PROSODY_PROFILE", "not a profile name"},
		{[]string{"PROSODY_PROFILE="}, "PROSODY_PROFILE", "set but empty"},
		{[]string{"PROSODY_ENVIRONMENT=prod"}, "PROSODY_ENVIRONMENT", "accepted: development, staging, production, testing"},
		{[]string{"PROSODY_DOMAIN="}, "PROSODY_DOMAIN", "no domain given"},
		{[]string{"PROSODY_DOMAIN=a,,b"}, "PROSODY_DOMAIN", "empty item"},
		{[]string{"PROSODY_DOMAIN=-bad.org"}, "PROSODY_DOMAIN", "starts or ends with a hyphen"},
		{[]string{"PROSODY_DOMAIN=bad-.org"}, "PROSODY_DOMAIN", "starts or ends with a hyphen"},
		{[]string{"PROSODY_DOMAIN=a_b.org"}, "PROSODY_DOMAIN", "only letters, digits and hyphens"},
		{[]string{"PROSODY_DOMAIN=a..org"}, "PROSODY_DOMAIN", "empty label"},
		{[]string{"PROSODY_DOMAIN=example.org."}, "PROSODY_DOMAIN", "trailing dot"},
		{[]string{"PROSODY_DOMAIN=" + strings.Repeat("a", 64) + ".org"}, "PROSODY_DOMAIN", "at most 63"},
		{[]string{"PROSODY_DOMAIN=" + strings.Repeat("abcdefghi.", 26) + "org"}, "PROSODY_DOMAIN", "at most 253"},
		{[]string{"PROSODY_DOMAIN=bücher.de"}, "PROSODY_DOMAIN", "xn-- form"},
		{[]string{"PROSODY_DOMAIN=a.org,A.org"}, "PROSODY_DOMAIN", "listed twice"},
		{[]string{"PROSODY_ADMINS=admin"}, "PROSODY_ADMINS", "not a JID (no @)"},
		{[]string{"PROSODY_ADMINS=admin@localhost/phone"}, "PROSODY_ADMINS", "not a bare JID"},
		{[]string{"PROSODY_ADMINS=@localhost"}, "PROSODY_ADMINS", "empty localpart"},
		{[]string{"PROSODY_ADMINS=a b@localhost"}, "PROSODY_ADMINS", "localpart has"},
		{[]string{"PROSODY_ADMINS=a@elsewhere.org"}, "PROSODY_ADMINS", "not served"},
		{[]string{"PROSODY_ADMINS=!a@bad..org"}, "PROSODY_ADMINS", "domain: empty label"},
		{[]string{"PROSODY_STORAGE=postgres", "PROSODY_DB_PASSWORD=x"}, "PROSODY_DB_HOST", "required for PROSODY_STORAGE=postgres"},
		{[]string{"PROSODY_STORAGE=postgres", "PROSODY_DB_HOST=db"}, "PROSODY_DB_PASSWORD", "required for PROSODY_STORAGE=postgres"},
		{[]string{"PROSODY_STORAGE=postgres", "PROSODY_DB_HOST=db", "PROSODY_DB_PASSWORD=x", "PROSODY_DB_USER="}, "PROSODY_DB_USER", "required for PROSODY_STORAGE=postgres"},
		{[]string{"PROSODY_STORAGE=postgres", "PROSODY_DB_HOST=db", "PROSODY_DB_PASSWORD=x", "PROSODY_DB_NAME="}, "PROSODY_DB_NAME", "required"},
		{[]string{"PROSODY_DB_HOST=db host"}, "PROSODY_DB_HOST", "not a host name"},
		{[]string{"PROSODY_DB_PORT=0"}, "PROSODY_DB_PORT", "port out of range"},
		{[]string{"PROSODY_C2S_PORT=65536"}, "PROSODY_C2S_PORT", "port out of range"},
		{[]string{"PROSODY_S2S_PORT=http"}, "PROSODY_S2S_PORT", "not a port number"},
		{[]string{"PROSODY_HTTP_PORT="}, "PROSODY_HTTP_PORT", "set but empty"},
		{[]string{"PROSODY_HTTPS_PORT=5222"}, "PROSODY_HTTPS_PORT", "already used by PROSODY_C2S_PORT"},
		{[]string{"PROSODY_HEALTH_LISTEN=:5280"}, "PROSODY_HEALTH_LISTEN", "already used by PROSODY_HTTP_PORT"},
		{[]string{"PROSODY_HEALTH_LISTEN=5282"}, "PROSODY_HEALTH_LISTEN", "not a listen address"},
		{[]string{"PROSODY_HEALTH_LISTEN=:0"}, "PROSODY_HEALTH_LISTEN", "bad port"},
		{[]string{"PROSODY_ALLOW_REGISTRATION=maybe"}, "PROSODY_ALLOW_REGISTRATION", "not a boolean; accepted: true, false, 1, 0, yes, no, on, off"},
		{[]string{"PROSODY_WATCH="}, "PROSODY_WATCH", "set but empty"},
		{[]string{"PROSODY_RESOURCE_LIMITS=2"}, "PROSODY_RESOURCE_LIMITS", "not a boolean"},
		{[]string{"PROSODY_LEGACY_MODE=y"}, "PROSODY_LEGACY_MODE", "not a boolean"},
		{[]string{"PROSODY_MIGRATION_MODE=enabled"}, "PROSODY_MIGRATION_MODE", "not a boolean"},
		{[]string{"PROSODY_REQUIRE_CHANNEL_BINDING=tru"}, "PROSODY_REQUIRE_CHANNEL_BINDING", "not a boolean"},
		{[]string{"PROSODY_TLS_ALLOW_SELF_SIGNED=nope"}, "PROSODY_TLS_ALLOW_SELF_SIGNED", "not a boolean"},
		{[]string{"PROSODY_FEATURES_AUTH_MFA=perhaps"}, "PROSODY_FEATURES_AUTH_MFA", "not a boolean"},
		{[]string{"PROSODY_FEATURES_CUSTOM_X=perhaps"}, "PROSODY_FEATURES_CUSTOM_X", "not a boolean"},
		{[]string{"PROSODY_LOG_LEVEL=verbose"}, "PROSODY_LOG_LEVEL", "accepted: debug, info, warn, error, or empty"},
		{[]string{"PROSODY_DEPLOYMENT_TYPE=swarm"}, "PROSODY_DEPLOYMENT_TYPE", "not a deployment type"},
		{[]string{"PROSODY_SCALE_PROFILE=huge"}, "PROSODY_SCALE_PROFILE", "not a scale profile"},
		{[]string{"PROSODY_TLS_PROFILE=legacy"}, "PROSODY_TLS_PROFILE", "not a TLS profile"},
		{[]string{"PROSODY_FEATURES=web admin"}, "PROSODY_FEATURES", "not a feature name"},
		{[]string{"PROSODY_FEATURES=+web/admin,-web/admin"}, "PROSODY_FEATURES", "both enabled and disabled"},
		{[]string{"PROSODY_FEATURES=+web/,x"}, "PROSODY_FEATURES", "not a feature name"},
		{[]string{"PROSODY_FAST_TOKEN_TTL=3 days"}, "PROSODY_FAST_TOKEN_TTL", "not a duration"},
		{[]string{"PROSODY_FAST_TOKEN_TTL=-1d"}, "PROSODY_FAST_TOKEN_TTL", "negative duration"},
		{[]string{"PROSODY_FAST_TOKEN_TTL=1s"}, "PROSODY_FAST_TOKEN_TTL", "too short"},
		{[]string{"PROSODY_STOP_TIMEOUT=0"}, "PROSODY_STOP_TIMEOUT", "too short"},
		{[]string{"PROSODY_STOP_TIMEOUT=10"}, "PROSODY_STOP_TIMEOUT", "not a duration"},
		{[]string{"PROSODY_RESTART_WINDOW=1y"}, "PROSODY_RESTART_WINDOW", "not a duration"},
		{[]string{"PROSODY_RESTART_BACKOFF="}, "PROSODY_RESTART_BACKOFF", "set but empty"},
		{[]string{"PROSODY_HEALTH_INTERVAL=1ms"}, "PROSODY_HEALTH_INTERVAL", "too short"},
		{[]string{"PROSODY_WATCH_DEBOUNCE=soon"}, "PROSODY_WATCH_DEBOUNCE", "not a duration"},
		{[]string{"PROSODY_HTTP_UPLOAD_SIZE_LIMIT=10 parsecs"}, "PROSODY_HTTP_UPLOAD_SIZE_LIMIT", "not a size"},
		{[]string{"PROSODY_HTTP_UPLOAD_SIZE_LIMIT=0"}, "PROSODY_HTTP_UPLOAD_SIZE_LIMIT", "at least 1 byte"},
		{[]string{"PROSODY_HTTP_UPLOAD_SIZE_LIMIT=99999999TiB"}, "PROSODY_HTTP_UPLOAD_SIZE_LIMIT", "too large"},
		{[]string{"PROSODY_CERTS_DIR=certs"}, "PROSODY_CERTS_DIR", "not an absolute path"},
		{[]string{"PROSODY_PLUGIN_DIR=plugins"}, "PROSODY_PLUGIN_DIR", "not an absolute path"},
		{[]string{"PROSODY_CONFIG_DIR=./config"}, "PROSODY_CONFIG_DIR", "not an absolute path"},
		{[]string{"PROSODY_CUSTOM_DIR="}, "PROSODY_CUSTOM_DIR", "set but empty"},
		{[]string{"PROSODY_DATA_DIR=data"}, "PROSODY_DATA_DIR", "not an absolute path"},
		{[]string{"PROSODY_RUNTIME_DIR=run"}, "PROSODY_RUNTIME_DIR", "not an absolute path"},
		{[]string{"PROSODY_HOOKS_DIR=hooks"}, "PROSODY_HOOKS_DIR", "not an absolute path"},
		{[]string{"PROSODY_EXTRA_MODULES=mod_carbons"}, "PROSODY_EXTRA_MODULES", "without mod_"},
		{[]string{"PROSODY_EXTRA_MODULES=lua/evil"}, "PROSODY_EXTRA_MODULES", "not a module name"},
		{[]string{"PROSODY_RESTART=sometimes"}, "PROSODY_RESTART", "accepted: never, on-failure, always, or empty"},
		{[]string{"PROSODY_RESTART_MAX=-1"}, "PROSODY_RESTART_MAX", "not a count"},
		{[]string{"PROSODY_UID=pro sody"}, "PROSODY_UID", "not a numeric id or a name"},
		{[]string{"PROSODY_UID=12x"}, "PROSODY_UID", "not a numeric id or a name"},
		{[]string{"PROSODY_UID=root"}, "PROSODY_UID", "refuses to run as root"},
		{[]string{"PROSODY_GID=0"}, "PROSODY_GID", "refuses to run as root"},
		{[]string{"PROSODY_LOG_FORMAT=logfmt"}, "PROSODY_LOG_FORMAT", "not a log format"},
		{[]string{"PROSODY_RELOAD_RESTART=always"}, "PROSODY_RELOAD_RESTART", "accepted: auto, never"},
		{[]string{"PROSODY_STORGE=sqlite"}, "PROSODY_STORGE", "unknown variable; did you mean PROSODY_STORAGE?"},
		{[]string{"PROSODY_ADMINSS=a@localhost"}, "PROSODY_ADMINSS", "did you mean PROSODY_ADMINS?"},
		{[]string{"PROSODY_ZZZZZZZZZZZZZZZ=1"}, "PROSODY_ZZZZZZZZZZZZZZZ", "unknown variable"},
		{[]string{"PROSODY_DOMAIN_FILE=/x"}, "PROSODY_DOMAIN_FILE", "_FILE is read only for secrets"},
		{[]string{"PROSODY_DOMAIN=a.org", "PROSODY_VIRTUAL_HOSTS=b.org"}, "PROSODY_VIRTUAL_HOSTS", "remove PROSODY_VIRTUAL_HOSTS"},
	}
	for _, c := range cases {
		t.Run(c.wantVar+"/"+strings.Join(c.env, ","), func(t *testing.T) {
			ps := problemsOf(t, c.env...)
			for _, p := range ps {
				if p.Var == c.wantVar && strings.Contains(p.String(), c.want) {
					if p.Msg == "" {
						t.Errorf("problem without message: %+v", p)
					}
					return
				}
			}
			t.Errorf("no problem on %s containing %q; got:\n%v", c.wantVar, c.want, &Problems{List: ps})
		})
	}
}

// TestAllProblemsAtOnce: many bad variables give one error listing each of them.
func TestAllProblemsAtOnce(t *testing.T) {
	ps := problemsOf(t, "PROSODY_STORAGE=mysql", "PROSODY_C2S_PORT=x", "PROSODY_WATCH=maybe",
		"PROSODY_FAST_TOKEN_TTL=soon", "PROSODY_PROFILE=A B", "PROSODY_TYPO=1")
	var vars []string
	for _, p := range ps {
		vars = append(vars, p.Var)
	}
	for _, want := range []string{"PROSODY_STORAGE", "PROSODY_C2S_PORT", "PROSODY_WATCH", "PROSODY_FAST_TOKEN_TTL", "PROSODY_PROFILE", "PROSODY_TYPO"} {
		if !slices.Contains(vars, want) {
			t.Errorf("%s not reported; got %q", want, vars)
		}
	}
	_, _, err := Load([]string{"PROSODY_STORAGE=mysql", "PROSODY_WATCH=maybe"})
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 2 {
		t.Errorf("Error() has %d lines, want one per problem:\n%s", len(lines), err)
	}
}

func TestWarnings(t *testing.T) {
	cases := []struct {
		env     []string
		wantVar string
		want    string
	}{
		{[]string{"PROSODY_VIRTUAL_HOSTS=example.org"}, "PROSODY_VIRTUAL_HOSTS", "rename it to PROSODY_DOMAIN"},
		{[]string{"PROSODY_ADMIN=a@localhost"}, "PROSODY_ADMIN", "rename it to PROSODY_ADMINS"},
		{[]string{"PROSODY_ENABLE_REGISTRATION=true", "PROSODY_ENVIRONMENT=development"}, "PROSODY_ENABLE_REGISTRATION", "rename it to PROSODY_ALLOW_REGISTRATION"},
		{[]string{"PROSODY_ALLOW_REGISTRATION=true", "PROSODY_DOMAIN=example.org"}, "PROSODY_ALLOW_REGISTRATION", "open registration in production"},
		{[]string{"PROSODY_TLS_ALLOW_SELF_SIGNED=1", "PROSODY_ENVIRONMENT=staging"}, "PROSODY_TLS_ALLOW_SELF_SIGNED", "self-signed"},
		{[]string{"PROSODY_LOG_LEVEL=debug"}, "PROSODY_LOG_LEVEL", "debug logging in production"},
		{[]string{}, "PROSODY_DOMAIN", "localhost in production"},
		{[]string{"PROSODY_DB_HOST=db"}, "PROSODY_DB_HOST", "ignored: PROSODY_STORAGE is sqlite"},
		{[]string{"PROSODY_DEPLOYMENT_TYPE=kubernetes"}, "PROSODY_DEPLOYMENT_TYPE", "changes nothing by itself"},
	}
	for _, c := range cases {
		t.Run(c.wantVar, func(t *testing.T) {
			_, ws := mustLoad(t, c.env...)
			for _, w := range ws {
				if w.Var == c.wantVar && strings.Contains(w.String(), c.want) {
					return
				}
			}
			t.Errorf("no warning on %s containing %q; got %v", c.wantVar, c.want, ws)
		})
	}
	// The deprecated name's value is used.
	s, _ := mustLoad(t, "PROSODY_VIRTUAL_HOSTS=example.org", "PROSODY_ADMIN=a@example.org")
	if !slices.Equal(s.Domains(), []string{"example.org"}) || !slices.Equal(s.Admins, []string{"a@example.org"}) {
		t.Errorf("deprecated values not used: %q %q", s.Domains(), s.Admins)
	}
	if s.Source("PROSODY_DOMAIN") != SourceEnv {
		t.Errorf("source via deprecated name = %q", s.Source("PROSODY_DOMAIN"))
	}
	// No warnings for a clean development setup.
	if _, ws := mustLoad(t, "PROSODY_ENVIRONMENT=development", "PROSODY_ALLOW_REGISTRATION=true"); len(ws) != 0 {
		t.Errorf("unexpected warnings: %v", ws)
	}
}

// TestEnvMatchesEnvconfig: the table Load reads (names, defaults) is envconfig's, and Load's
// raw view equals what envconfig.Process fills from the same process environment.
func TestEnvMatchesEnvconfig(t *testing.T) {
	vars, err := variables()
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := envconfig.Usagef(Prefix, &Env{}, &buf, "{{range .}}{{usage_key .}}={{usage_default .}}\n{{end}}"); err != nil {
		t.Fatal(err)
	}
	var mine strings.Builder
	for _, v := range vars {
		mine.WriteString(v.Key + "=" + v.Default + "\n")
	}
	if mine.String() != buf.String() {
		t.Fatalf("variable table differs from envconfig's:\nmine:\n%s\nenvconfig:\n%s", mine.String(), buf.String())
	}

	set := map[string]string{
		"PROSODY_DOMAIN": "example.org", "PROSODY_DB_PASSWORD": "pw", "PROSODY_C2S_PORT": "6222",
		"PROSODY_HTTPS_PORT": "6281", "PROSODY_FEATURES_AUTH_SASL2": "true", "PROSODY_FAST_TOKEN_TTL": "1d",
		"PROSODY_LOG_LEVEL": "", "PROSODY_ADMINS": "a@example.org",
	}
	var environ []string
	for k, v := range set {
		t.Setenv(k, v)
		environ = append(environ, k+"="+v)
	}
	var viaEnvconfig Env
	if err := envconfig.Process(Prefix, &viaEnvconfig); err != nil {
		t.Fatal(err)
	}
	s, _ := mustLoad(t, environ...)
	if s.DBPassword != viaEnvconfig.DBPassword || s.AdminPassword != viaEnvconfig.AdminPassword {
		t.Errorf("secrets differ from envconfig's")
	}
	// Settings keeps only the redacted form of secrets in its raw view.
	viaEnvconfig.DBPassword = NewSecret(viaEnvconfig.DBPassword.String())
	viaEnvconfig.AdminPassword = NewSecret(viaEnvconfig.AdminPassword.String())
	if !reflect.DeepEqual(viaEnvconfig, s.raw) {
		t.Errorf("envconfig.Process:\n%+v\nLoad:\n%+v", viaEnvconfig, s.raw)
	}
}

func TestDescribeRedactsSecrets(t *testing.T) {
	const pw = "correct-horse-battery"
	s, _ := mustLoad(t, "PROSODY_DB_PASSWORD="+pw, "PROSODY_FEATURES_EXTRA_THING=yes")
	s.UseGenerated(map[string]string{"component_secret": "generated-value-123"})
	entries := s.Describe()
	byVar := map[string]Entry{}
	for _, e := range entries {
		byVar[e.Var] = e
		if strings.Contains(e.Value, pw) || strings.Contains(e.Value, "generated-value-123") {
			t.Errorf("secret in Describe: %+v", e)
		}
	}
	vars, _ := variables()
	for _, v := range vars {
		e, ok := byVar[v.Key]
		if !ok || e.Description == "" || e.Source == "" {
			t.Errorf("Describe entry for %s: %+v", v.Key, e)
		}
	}
	if e := byVar["PROSODY_DB_PASSWORD"]; e.Value != redacted || e.Source != SourceEnv {
		t.Errorf("password entry %+v", e)
	}
	if e := byVar["PROSODY_FEATURES_EXTRA_THING"]; e.Value != "true" {
		t.Errorf("extra toggle entry %+v", e)
	}
	if e := byVar["component_secret"]; e.Source != SourceGenerated || e.Value != redacted {
		t.Errorf("generated entry %+v", e)
	}
	if e := byVar["PROSODY_C2S_PORT"]; e.Value != "5222" || e.Source != SourceDefault {
		t.Errorf("port entry %+v", e)
	}
	// Printing the whole value, as a careless log line would, shows no secret either.
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", *s, *s, s), fmt.Sprint(s)} {
		if strings.Contains(out, pw) || strings.Contains(out, "generated-value-123") {
			t.Errorf("secret in fmt output of Settings: %s", out)
		}
	}
	if js, err := json.Marshal(s); err != nil || strings.Contains(string(js), pw) {
		t.Errorf("secret in JSON of Settings (%v): %s", err, js)
	}
}

func TestFirstDuplicateWins(t *testing.T) {
	s, _ := mustLoad(t, "PROSODY_C2S_PORT=6000", "PROSODY_C2S_PORT=7000")
	if s.C2SPort != 6000 {
		t.Errorf("C2SPort = %d, want the first value 6000 as os.Getenv gives", s.C2SPort)
	}
}

func TestInterfaces(t *testing.T) {
	s, _, err := Load([]string{"PROSODY_INTERFACES=127.0.0.1, ::1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Interfaces) != 2 || s.Interfaces[0] != "127.0.0.1" || s.Interfaces[1] != "::1" {
		t.Fatalf("Interfaces = %q", s.Interfaces)
	}
	_, _, err = Load([]string{"PROSODY_INTERFACES=localhost"})
	if err == nil || !strings.Contains(err.Error(), `PROSODY_INTERFACES="localhost": "localhost" is not an IP address`) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadLenient(t *testing.T) {
	fatal := func(name string) bool { return name == "PROSODY_STOP_TIMEOUT" }
	s, _, tolerated, err := LoadLenient([]string{"PROSODY_STORAGE=mysql", "PROSODY_STOP_TIMEOUT=3s"}, fatal)
	if err != nil || s == nil || s.StopTimeout != 3*time.Second {
		t.Fatalf("LoadLenient = %v, %v; want settings with StopTimeout 3s", s, err)
	}
	if len(tolerated) != 1 || tolerated[0].Var != "PROSODY_STORAGE" {
		t.Fatalf("tolerated = %v", tolerated)
	}
	_, _, _, err = LoadLenient([]string{"PROSODY_STOP_TIMEOUT=soon"}, fatal)
	if err == nil || !strings.Contains(err.Error(), "PROSODY_STOP_TIMEOUT") {
		t.Fatalf("err = %v, want a problem naming PROSODY_STOP_TIMEOUT", err)
	}
}

// The status token is a secret with a _FILE form, checked for length and form without ever
// being echoed; the watchdog timeout is a duration, 0 (off) or at least a second.
func TestStatusTokenAndWatchdog(t *testing.T) {
	const tok = "s3cret-status-token-0123456789"
	s, _ := mustLoad(t)
	if s.StatusToken.IsSet() || s.WatchdogTimeout != 60*time.Second {
		t.Errorf("defaults: token set %v, watchdog %s; want unset and 60s", s.StatusToken.IsSet(), s.WatchdogTimeout)
	}
	file := writeFile(t, t.TempDir(), "token", tok+"\n")
	s, _ = mustLoad(t, "PROSODY_STATUS_TOKEN_FILE="+file, "PROSODY_WATCHDOG_TIMEOUT=0")
	if s.StatusToken.Reveal() != tok || s.WatchdogTimeout != 0 || s.Source("PROSODY_STATUS_TOKEN") != SourceFile {
		t.Errorf("from file: token %q (source %s), watchdog %s", s.StatusToken.Reveal(), s.Source("PROSODY_STATUS_TOKEN"), s.WatchdogTimeout)
	}
	if !slices.Contains(SecretVars(), "PROSODY_STATUS_TOKEN") {
		t.Errorf("SecretVars() = %v lacks PROSODY_STATUS_TOKEN: init hooks would get it", SecretVars())
	}
	for _, tc := range []struct {
		env, wantVar, want string
	}{
		{"PROSODY_STATUS_TOKEN=short-token", "PROSODY_STATUS_TOKEN", "too short (11 characters); accepted: at least 16"},
		{"PROSODY_STATUS_TOKEN=has a space in the token", "PROSODY_STATUS_TOKEN", "space, control or non-ASCII"},
		{"PROSODY_WATCHDOG_TIMEOUT=500ms", "PROSODY_WATCHDOG_TIMEOUT", `"500ms": too short; accepted: at least 1s, or 0 to disable`},
		{"PROSODY_WATCHDOG_TIMEOUT=soon", "PROSODY_WATCHDOG_TIMEOUT", "a duration such as"},
		{"PROSODY_HEALTH_INTERVAL_FILE=/x", "PROSODY_HEALTH_INTERVAL_FILE", "PROSODY_STATUS_TOKEN_FILE"},
	} {
		ps := problemsOf(t, tc.env)
		if len(ps) != 1 || ps[0].Var != tc.wantVar || !strings.Contains(ps[0].String(), tc.want) {
			t.Errorf("%s: problems %v, want one on %s containing %q", tc.env, &Problems{List: ps}, tc.wantVar, tc.want)
		}
		if v, ok := strings.CutPrefix(tc.env, "PROSODY_STATUS_TOKEN="); ok && strings.Contains((&Problems{List: ps}).Error(), v) {
			t.Errorf("the problem echoes the token: %v", &Problems{List: ps})
		}
	}
}

func TestDatabaseAddr(t *testing.T) {
	pg := []string{"PROSODY_STORAGE=postgres", "PROSODY_DB_PASSWORD=pw-for-the-test"}
	for _, tc := range []struct {
		env           []string
		network, addr string
	}{
		{nil, "", ""},
		{append(pg, "PROSODY_DB_HOST=db.example.org"), "tcp", "db.example.org:5432"},
		{append(pg, "PROSODY_DB_HOST=::1", "PROSODY_DB_PORT=6543"), "tcp", "[::1]:6543"},
		{append(pg, "PROSODY_DB_HOST=/run/postgresql/"), "unix", "/run/postgresql/.s.PGSQL.5432"},
	} {
		s, _ := mustLoad(t, tc.env...)
		if n, a := s.DatabaseAddr(); n != tc.network || a != tc.addr {
			t.Errorf("%v: DatabaseAddr() = %q %q, want %q %q", tc.env, n, a, tc.network, tc.addr)
		}
	}
}
