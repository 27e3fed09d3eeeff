// Package settings reads and validates the PROSODY_* environment of the entrypoint.
//
// Load reads every variable of Env (names, defaults and descriptions are envconfig tags on
// Env), reads secrets from VAR_FILE files, accepts deprecated names with a warning, reports
// unknown PROSODY_* names with the nearest known one, and validates every value, collecting
// all problems into one *Problems error. Secrets are held as Secret values that never print.
//
// Decisions an operator sees:
//   - An unknown PROSODY_* name is a problem (a typo must not silently fall back to a default),
//     except PROSODY_FEATURES_<NAME>, which goes to Settings.Toggles for the PFE engine to check.
//   - An admin JID must be on a served domain; an admin from another server is written with a
//     leading "!" (RemoteAdminMarker): PROSODY_ADMINS=admin@example.org,!ops@example.net.
//   - Domains are ASCII (lowercased); internationalized names must be given in xn-- form,
//     because the standard library has no IDNA mapping.
//   - Only secrets (PROSODY_DB_PASSWORD, PROSODY_ADMIN_PASSWORD, PROSODY_STATUS_TOKEN,
//     PROSODY_ACME_EAB_HMAC_KEY) have a
//     _FILE form; a deprecated
//     name set together with its replacement is a problem, alone it is used with a warning.
package settings

import (
	"fmt"
	"io"
	"maps"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// Source says where an effective value came from.
type Source string

// Sources of values.
const (
	SourceDefault   Source = "default"   // the variable was unset: the default applies
	SourceEnv       Source = "env"       // the variable (or its deprecated name) was set
	SourceFile      Source = "file"      // a secret read from VAR_FILE
	SourceGenerated Source = "generated" // an internal secret from EnsureGenerated
)

// FeatureChange is one item of PROSODY_FEATURES: "+web/admin" enables, "-mobile/push" disables.
type FeatureChange struct {
	Name   string // group/name as written, e.g. "web/admin"; the PFE engine checks it exists
	Enable bool
}

// Settings is the validated environment. Zero values are not meaningful: get it from Load.
type Settings struct {
	Profile     string   // profile name; its existence is checked by the PFE engine
	Environment string   // development, staging, production or testing
	Admins      []string // bare JIDs, lowercased ASCII, remote marker removed
	domains     []string // see Domains

	Storage    string // internal, sqlite or postgres
	DBHost     string
	DBPort     int
	DBName     string
	DBUser     string
	DBPassword Secret

	AllowRegistration bool
	LogLevel          string // debug, info, warn or error; the environment's default when unset

	C2SPort, S2SPort, HTTPPort, HTTPSPort int
	Interfaces                            []string // "*", "::" or IP addresses

	// Prosody's HTTP service behind a proxy or in a cluster (httpproxy.go). A nil list or an
	// empty string leaves Prosody's own default.
	HTTPInterfaces          []string // http_interfaces: "*", "::" or IP addresses
	HTTPSInterfaces         []string // https_interfaces: "*", "::" or IP addresses
	TrustedProxies          []string // trusted_proxies: IP addresses or CIDR ranges
	HTTPExternalURL         string   // http_external_url: an absolute http or https URL
	HTTPUploadExternalURL   string   // the upload component's http_external_url
	ConsiderWebsocketSecure bool
	ConsiderBoshSecure      bool
	OpenmetricsAllowIPs     []string // openmetrics_allow_ips, each in Go's canonical form
	OpenmetricsAllowCIDR    string   // openmetrics_allow_cidr: one CIDR range

	DeploymentType string // docker, compose, kubernetes or bare
	ScaleProfile   string // small, medium or large
	ResourceLimits bool
	LegacyMode     bool
	MigrationMode  bool

	// Toggles holds every non-empty PROSODY_FEATURES_<NAME> variable (the listed ones and any
	// other), keyed by the variable name as given, with the value read by ParseBool and written
	// "true" or "false". An unset or empty toggle is absent: the profile decides. The PFE engine
	// checks the names against its feature catalog (Suggest gives its did-you-mean).
	Toggles map[string]string
	// Features is PROSODY_FEATURES in order.
	Features []FeatureChange

	FastTokenTTL          time.Duration
	RequireChannelBinding bool
	HTTPUploadSizeLimit   int64 // bytes
	AdminPassword         Secret

	TLSProfile         string // modern, intermediate or old
	TLSAllowSelfSigned bool
	CertsDir           string
	ExtraModules       []string // module names without "mod_"
	PluginDir          string   // "" = none

	ConfigDir, CustomDir, DataDir, RuntimeDir, HooksDir string // absolute, cleaned

	StopTimeout    time.Duration
	Restart        string // never, on-failure, always, or "" (see RestartPolicy)
	RestartMax     int
	RestartWindow  time.Duration
	RestartBackoff time.Duration
	UID, GID       int    // -1 = unset (or given as a name): the prosody user's uid and gid
	LogFormat      string // json, console, or "" (console on a terminal, json otherwise)
	HealthListen   string // host:port to listen on; "" when PROSODY_HEALTH_LISTEN=off
	HealthInterval time.Duration
	ReloadRestart  string // auto or never
	Watch          bool
	WatchDebounce  time.Duration

	// UserSpec and GroupSpec are PROSODY_UID and PROSODY_GID as given (trimmed):
	// a name or a decimal id, "" when unset. Names are resolved when the child
	// starts (supervise.RunAs, supervise.PrivilegeDrop).
	UserSpec, GroupSpec string

	// Notify (PROSODY_NOTIFY) gives a plain-init child a NOTIFY_SOCKET and
	// makes its readiness wait for READY=1.
	Notify bool

	// StatusToken, when set, lets a client that is not on loopback read /status with
	// "Authorization: Bearer <token>".
	StatusToken Secret
	// WatchdogTimeout is how long the readiness probe may fail while Prosody should be
	// serving before the watchdog restarts it; 0 disables the watchdog.
	WatchdogTimeout time.Duration

	// SASL2Timeout is Prosody's c2s_timeout (the design's sasl2_timeout); 0: Prosody's default.
	SASL2Timeout time.Duration
	// LegacyDir is the operator's legacy modules.d directory; "": the config tree's.
	LegacyDir string
	// ACME is the certificate client of the TLS stage; see AcmeSettings.
	ACME AcmeSettings
	// ConfigFile is the operator's own prosody.cfg.lua (absolute path), run instead of the
	// PFE render; "" renders from the tree.
	ConfigFile string
	// DataAdopt lets start-up give prosody a data directory whose top belongs to another
	// non-root uid (another image's prosody user), with the files of that uid under it.
	DataAdopt bool
	// VerifyOnStart runs the client-level self-test (entrypoint verify) once
	// after Prosody is first ready, and logs its result.
	VerifyOnStart bool
	// SocketActivation: the entrypoint binds Prosody's listeners and passes them to each
	// Prosody it starts as inherited descriptors (LISTEN_FDS); false lets Prosody bind.
	SocketActivation bool

	// raw holds the text of every variable for Describe, with secret fields replaced by their
	// redacted form: fmt prints unexported fields without calling Secret's methods, so a real
	// secret here would show in %+v of a Settings.
	raw       Env
	vars      []variable
	sources   map[string]Source
	generated []string // names recorded by UseGenerated, sorted
}

// AcmeSettings are the PROSODY_ACME_* variables. Enabled is false unless PROSODY_ACME is true, or
// PROSODY_ACME is empty and PROSODY_ACME_EMAIL is set; the other fields are read and checked
// either way.
type AcmeSettings struct {
	Enabled bool
	Email   string
	// Directory is the directory URL (letsencrypt and letsencrypt-staging already resolved).
	Directory  string
	CAFile     string // "" = the system roots
	EABKid     string
	EABHmacKey Secret
	// Challenges are "http-01" and/or "tls-alpn-01", in the order given.
	Challenges  []string
	HTTPPort    int
	TLSPort     int
	RenewBefore time.Duration // 0 = a third of the lifetime (or the CA's renewal information)
	// RetryBackoff is the first delay before a failed renewal is tried again.
	RetryBackoff time.Duration
}

// Let's Encrypt's ACME directories, the named choices of PROSODY_ACME_DIRECTORY.
const (
	LetsEncryptDirectory        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStagingDirectory = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// Domains returns the virtual hosts of PROSODY_DOMAIN, lowercased, in the given order, without
// duplicates. The caller owns the returned slice.
func (s *Settings) Domains() []string { return slices.Clone(s.domains) }

// HealthEnabled reports whether the health server should run (PROSODY_HEALTH_LISTEN is not off).
func (s *Settings) HealthEnabled() bool { return s.HealthListen != "" }

// DatabaseAddr returns where PostgreSQL listens for the configured storage, as net.Dial
// takes it: ("tcp", "host:port"), or ("unix", "<dir>/.s.PGSQL.<port>") when PROSODY_DB_HOST
// is a socket directory (libpq's rule). It returns ("", "") unless PROSODY_STORAGE=postgres.
func (s *Settings) DatabaseAddr() (network, addr string) {
	switch {
	case s.Storage != "postgres" || s.DBHost == "":
		return "", ""
	case strings.HasPrefix(s.DBHost, "/"):
		return "unix", filepath.Join(s.DBHost, ".s.PGSQL."+strconv.Itoa(s.DBPort))
	}
	return "tcp", net.JoinHostPort(s.DBHost, strconv.Itoa(s.DBPort))
}

// RestartPolicy returns the effective restart policy: PROSODY_RESTART when set, otherwise
// on-failure when the child is prosody and never for any other command.
func (s *Settings) RestartPolicy(childIsProsody bool) string {
	switch {
	case s.Restart != "":
		return s.Restart
	case childIsProsody:
		return "on-failure"
	}
	return "never"
}

// Source returns where the value of the variable name (e.g. "PROSODY_DOMAIN") came from, or ""
// for a name this package does not know.
func (s *Settings) Source(name string) Source { return s.sources[name] }

// UseGenerated records the names of internal secrets returned by EnsureGenerated so Describe
// lists them (redacted, source generated). Only the names are kept: the caller keeps the values.
func (s *Settings) UseGenerated(secrets map[string]string) {
	for k := range secrets {
		if !slices.Contains(s.generated, k) {
			s.generated = append(s.generated, k)
		}
	}
	slices.Sort(s.generated)
}

// Entry is one line of Describe.
type Entry struct {
	Var         string
	Value       string // the effective value as text; "<redacted>" for a set secret
	Source      Source
	Description string
}

// WriteTable prints Describe as a table for a person: variable, value
// (secrets redacted), source.
func (s *Settings) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tSOURCE")
	for _, e := range s.Describe() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Var, e.Value, e.Source)
	}
	return tw.Flush()
}

// Describe lists every variable with its effective value, source and description, in table
// order, then any extra feature toggles and recorded generated secrets (by name, sorted).
// Secrets are redacted. For `entrypoint env`.
func (s *Settings) Describe() []Entry {
	rv := reflect.ValueOf(s.raw)
	out := make([]Entry, 0, len(s.vars)+len(s.Toggles)+len(s.generated))
	known := make(map[string]bool, len(s.vars))
	for _, v := range s.vars {
		known[v.Key] = true
		var val string
		if v.secret {
			val = rv.Field(v.field).Interface().(Secret).String()
		} else {
			val = rv.Field(v.field).String()
		}
		out = append(out, Entry{Var: v.Key, Value: val, Source: s.sources[v.Key], Description: v.Desc})
	}
	for _, k := range slices.Sorted(maps.Keys(s.Toggles)) {
		if !known[k] {
			out = append(out, Entry{Var: k, Value: s.Toggles[k], Source: SourceEnv, Description: "feature toggle (boolean)"})
		}
	}
	for _, k := range s.generated {
		out = append(out, Entry{Var: k, Value: redacted, Source: SourceGenerated, Description: "internal secret kept in the data directory"})
	}
	return out
}

// deprecatedName is an old or foreign variable name: accepted as New, or, when New is ""
// (a variable of another image with no exact equivalent), refused with Hint, what to set
// instead. From is the image whose name it is ("" for an old name of this project's own).
type deprecatedName struct{ Old, New, From, Hint string }

// Images whose variables are accepted where ours mean exactly the same (docs/migrating.md).
const (
	fromOfficial = "the official prosody/prosody image's"
	fromSnikket  = "Snikket's"
)

// deprecatedNames is the one table of old and foreign names: this project's old names, those
// of the official image and of Snikket that have an exact equivalent (same meaning, same
// values; accepted with a warning naming the replacement), and the official image's
// variables with no exact equivalent (refused with their hint instead of a did-you-mean).
func deprecatedNames() []deprecatedName {
	return []deprecatedName{
		{"PROSODY_SQL_HOST", "PROSODY_DB_HOST", fromOfficial, ""},
		{"PROSODY_SQL_DB", "PROSODY_DB_NAME", fromOfficial, ""},
		{"PROSODY_SQL_USERNAME", "PROSODY_DB_USER", fromOfficial, ""},
		{"PROSODY_SQL_PASSWORD", "PROSODY_DB_PASSWORD", fromOfficial, ""},
		{"PROSODY_ENABLE_MODULES", "PROSODY_EXTRA_MODULES", fromOfficial, ""},
		{"SNIKKET_DOMAIN", "PROSODY_DOMAIN", fromSnikket, ""},
		{"SNIKKET_LOGLEVEL", "PROSODY_LOG_LEVEL", fromSnikket, ""},
		{"SNIKKET_TLS_PROFILE", "PROSODY_TLS_PROFILE", fromSnikket, ""},
		{"PROSODY_VIRTUAL_HOSTS", "PROSODY_DOMAIN", "", ""}, // the official image's too
		{"PROSODY_DOMAINS", "PROSODY_DOMAIN", "", ""},
		{"PROSODY_ADMIN", "PROSODY_ADMINS", "", ""},
		{"PROSODY_ENABLE_REGISTRATION", "PROSODY_ALLOW_REGISTRATION", "", ""},
		{"PROSODY_ENV", "PROSODY_ENVIRONMENT", "", ""},
		{"PROSODY_LOGLEVEL", "PROSODY_LOG_LEVEL", "", ""}, // the official image's too
		{"PROSODY_DB_PASS", "PROSODY_DB_PASSWORD", "", ""},

		{"PROSODY_SQL_DRIVER", "", fromOfficial, "set PROSODY_STORAGE=postgres (or sqlite) instead"},
		{"PROSODY_PLUGIN_PATHS", "", fromOfficial, "set PROSODY_PLUGIN_DIR (one directory) instead"},
		{"PROSODY_DISABLE_MODULES", "", fromOfficial, "switch the feature off (PROSODY_FEATURES=-group/name) or use PROSODY_CONFIG_FILE"},
		{"PROSODY_COMPONENTS", "", fromOfficial, "components come from features (collaboration/muc, web/upload)"},
		{"PROSODY_EXTRA_CONFIG", "", fromOfficial, "put your options in a custom feature (PROSODY_CUSTOM_DIR) or use PROSODY_CONFIG_FILE"},
		{"PROSODY_CERTIFICATES", "", fromOfficial, "set PROSODY_CERTS_DIR (an absolute path) instead"},
		{"PROSODY_RETENTION_DAYS", "", fromOfficial, "the archive and upload features set retention; use a custom feature to change it"},
		{"PROSODY_ARCHIVE_EXPIRY_DAYS", "", fromOfficial, "the messaging/archive feature sets archive_expires_after; use a custom feature to change it"},
		{"PROSODY_UPLOAD_LIMIT_MB", "", fromOfficial, "set PROSODY_HTTP_UPLOAD_SIZE_LIMIT (e.g. 10MiB) instead"},
	}
}

// featuresPrefix starts the per-feature toggle variables.
const featuresPrefix = Prefix + "_FEATURES_"

// Load reads the settings from environ (as os.Environ: "NAME=value"; the first of duplicate
// names wins, as for os.Getenv). Only PROSODY_* names are looked at. It returns warnings for
// accepted but questionable input. The error is a *Problems listing every problem, except when
// the Env table itself is broken (a programming error), which is a plain error.
func Load(environ []string) (*Settings, []Warning, error) {
	s, warnings, problems, err := load(environ)
	if err != nil {
		return nil, nil, err
	}
	if len(problems) > 0 {
		return nil, warnings, &Problems{List: problems}
	}
	return s, warnings, nil
}

// LoadLenient is Load for plain init: only problems with the variables for
// which fatal returns true are an error (*Problems); the others are returned as
// tolerated, with the settings (those fields hold whatever could be parsed, so
// the caller must not use them).
func LoadLenient(environ []string, fatal func(name string) bool) (*Settings, []Warning, []Problem, error) {
	s, warnings, problems, err := load(environ)
	if err != nil {
		return nil, nil, nil, err
	}
	var bad, tolerated []Problem
	for _, p := range problems {
		if fatal(p.Var) {
			bad = append(bad, p)
		} else {
			tolerated = append(tolerated, p)
		}
	}
	if len(bad) > 0 {
		return nil, warnings, tolerated, &Problems{List: bad}
	}
	return s, warnings, tolerated, nil
}

func load(environ []string) (*Settings, []Warning, []Problem, error) {
	vars, err := variables()
	if err != nil {
		return nil, nil, nil, err
	}
	env := make(map[string]string)
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || (!strings.HasPrefix(k, Prefix+"_") && !isForeignName(k)) {
			continue
		}
		if _, dup := env[k]; !dup {
			env[k] = v
		}
	}

	p := &parser{env: env}
	s := &Settings{vars: vars, sources: make(map[string]Source, len(vars))}
	rv := reflect.ValueOf(&s.raw).Elem()
	known := make(map[string]bool, len(vars)*2)
	for _, v := range vars {
		known[v.Key] = true
		val, src := p.lookup(v)
		s.sources[v.Key] = src
		if v.secret {
			rv.Field(v.field).Set(reflect.ValueOf(NewSecret(val)))
		} else {
			rv.Field(v.field).SetString(val)
		}
	}
	p.unknown(vars, known)
	p.build(s)
	for _, v := range vars {
		if v.secret { // see Settings.raw
			f := rv.Field(v.field)
			f.Set(reflect.ValueOf(NewSecret(f.Interface().(Secret).String())))
		}
	}
	return s, p.warnings, p.problems, nil
}

// lookup returns the raw value of v and its source, handling deprecated names and VAR_FILE.
func (p *parser) lookup(v variable) (string, Source) {
	val, set := p.env[v.Key]
	for _, d := range deprecatedNames() {
		if d.New != v.Key {
			continue
		}
		old, oldSet := p.env[d.Old]
		switch {
		case !oldSet:
		case set:
			p.problem(d.Old, "", fmt.Sprintf("deprecated name set together with %s; remove %s", d.New, d.Old), "")
		default:
			val, set = old, true
			if d.From != "" {
				p.warn(d.Old, fmt.Sprintf("%s name, accepted as %s; rename it to %s (docs/migrating.md)", d.From, d.New, d.New))
			} else {
				p.warn(d.Old, fmt.Sprintf("deprecated; rename it to %s", d.New))
			}
		}
	}
	src := SourceEnv
	if v.secret {
		fileVar := v.Key + "_FILE"
		if path, fileSet := p.env[fileVar]; fileSet {
			switch {
			case set:
				p.problem(v.Key, "", fmt.Sprintf("set together with %s; set only one", fileVar), "")
			case path == "":
				p.problem(fileVar, "", "set but empty", "the path of a file holding the secret")
			case !pfe.Printable(path):
				// Refused before it is opened: the path reaches messages of other packages.
				p.problem(fileVar, path, "has a control character or is not UTF-8", "the path of a file holding the secret, of printable characters")
			default:
				content, err := readSecretFile(path)
				if err != nil {
					p.problem(fileVar, path, err.Error(), "a readable file holding the secret")
				}
				val, set, src = content, true, SourceFile
			}
		}
	}
	if !set {
		return v.Default, SourceDefault
	}
	return val, src
}

// isForeignName reports whether name is another image's variable that Load accepts (the
// PROSODY_* ones are read anyway).
func isForeignName(name string) bool {
	for _, d := range deprecatedNames() {
		if d.Old == name && d.New != "" {
			return true
		}
	}
	return false
}

// unknown reports PROSODY_* names that are not variables, secret files, deprecated names or
// feature toggles, with the nearest known name.
func (p *parser) unknown(vars []variable, known map[string]bool) {
	candidates := make([]string, 0, len(vars)+4)
	for _, v := range vars {
		candidates = append(candidates, v.Key)
		if v.secret {
			known[v.Key+"_FILE"] = true
			candidates = append(candidates, v.Key+"_FILE")
		}
	}
	refused := make(map[string]string)
	for _, d := range deprecatedNames() {
		if d.New != "" {
			known[d.Old] = true
		} else {
			refused[d.Old] = fmt.Sprintf("%s variable, with no exact equivalent here: %s (docs/migrating.md)", d.From, d.Hint)
		}
	}
	for name, r := range DesignRefusals() {
		if !strings.Contains(name, "=") {
			refused[name] = r.Message()
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.env)) {
		if msg, ok := refused[name]; ok {
			p.problem(name, "", msg, "")
			continue
		}
		if known[name] || strings.HasPrefix(name, featuresPrefix) {
			continue
		}
		if _, ok := designToggleAliases()[name]; ok {
			continue // read by toggles
		}
		// The value is not shown: an unknown name may be a mistyped secret.
		if base, ok := strings.CutSuffix(name, "_FILE"); ok && known[base] {
			p.problem(name, "", "_FILE is read only for secrets", secretFileNames(vars))
			continue
		}
		msg := "unknown variable"
		if sug := Suggest(name, candidates); sug != "" {
			msg += "; did you mean " + sug + "?"
		}
		p.problem(name, "", msg, "")
	}
}

// secretFileNames lists the VAR_FILE names of the secrets, comma-separated, in table order.
func secretFileNames(vars []variable) string {
	var names []string
	for _, v := range vars {
		if v.secret {
			names = append(names, v.Key+"_FILE")
		}
	}
	return strings.Join(names, ", ")
}

// SecretVars lists every variable whose value is a secret: the secret fields
// and the deprecated names that set them. Their *_FILE forms are paths, not
// secrets. Child processes that need no secret (init hooks, config checkers)
// must not get these.
func SecretVars() []string {
	vars, err := variables()
	if err != nil {
		return nil
	}
	secret := map[string]bool{}
	for _, v := range vars {
		if v.secret {
			secret[v.Key] = true
		}
	}
	var out []string
	for name := range secret {
		out = append(out, name)
	}
	for _, d := range deprecatedNames() {
		if secret[d.New] {
			out = append(out, d.Old)
		}
	}
	sort.Strings(out)
	return out
}
