package settings

import (
	"fmt"
	"reflect"
	"strings"
)

// Prefix is the prefix of every variable this package reads.
const Prefix = "PROSODY"

// Env is the raw view of the environment: one field per PROSODY_* variable, as envconfig
// reads it (split_words names, `default` applied when unset, a set-but-empty value kept
// empty). It is the single table of variable names, defaults and descriptions; Load turns it
// into a validated Settings. Every field is a string except secrets, which are Secret.
type Env struct {
	Profile     string `split_words:"true" default:"standard" desc:"profile: minimal, standard, enterprise, development, or the name of a custom profile (a-z, 0-9, _ and -, starting with a letter or digit, at most 64 characters)"`
	Environment string `split_words:"true" default:"production" desc:"environment overrides applied last: development, staging, production, testing"`
	Domain      string `split_words:"true" default:"localhost" desc:"virtual hosts served, comma-separated (ASCII or xn-- punycode)"`
	Admins      string `split_words:"true" default:"" desc:"admin JIDs (localpart@domain), comma-separated; on a served domain, or marked remote with a leading !"`

	Storage    string `split_words:"true" default:"sqlite" desc:"storage backend: internal, sqlite, postgres"`
	DBHost     string `split_words:"true" default:"" desc:"PostgreSQL host (required for postgres)"`
	DBPort     string `split_words:"true" default:"5432" desc:"PostgreSQL port"`
	DBName     string `split_words:"true" default:"prosody" desc:"PostgreSQL database name"`
	DBUser     string `split_words:"true" default:"prosody" desc:"PostgreSQL user"`
	DBPassword Secret `split_words:"true" default:"" desc:"PostgreSQL password (secret; or PROSODY_DB_PASSWORD_FILE; required for postgres)"`

	AllowRegistration string `split_words:"true" default:"false" desc:"allow in-band account registration (boolean)"`
	LogLevel          string `split_words:"true" default:"" desc:"log level of Prosody and of the entrypoint: debug, info, warn, error (empty: debug in development, info otherwise)"`

	C2sPort   string `split_words:"true" default:"5222" desc:"client-to-server port"`
	S2sPort   string `split_words:"true" default:"5269" desc:"server-to-server port"`
	HTTPPort  string `split_words:"true" default:"5280" desc:"HTTP port"`
	HTTPSPort string `split_words:"true" default:"5281" desc:"HTTPS port"`

	Interfaces string `split_words:"true" default:"" desc:"addresses Prosody's public listeners (c2s, s2s, https) bind to, comma-separated: * for every IPv4 address, :: for every IPv6 address, or IP addresses such as 127.0.0.1 (empty: Prosody's default, every address)"`

	// Prosody's HTTP service behind a reverse proxy, an Ingress or a Prometheus in another
	// container (web/http, web/websocket, web/upload, admin/monitoring).
	HTTPInterfaces          string `split_words:"true" default:"" desc:"addresses Prosody's plain HTTP listener (PROSODY_HTTP_PORT: websocket, BOSH, uploads, /metrics) binds to (http_interfaces), comma-separated like PROSODY_INTERFACES; set it (e.g. *) when a proxy, Ingress or Prometheus outside this container must reach it (empty: Prosody's default, loopback only)"`
	HTTPSInterfaces         string `split_words:"true" default:"" desc:"addresses Prosody's HTTPS listener (PROSODY_HTTPS_PORT) binds to (https_interfaces), comma-separated like PROSODY_INTERFACES (empty: PROSODY_INTERFACES)"`
	TrustedProxies          string `split_words:"true" default:"" desc:"reverse proxies whose X-Forwarded-For and X-Forwarded-Proto Prosody believes (trusted_proxies): IP addresses or CIDR ranges such as 10.0.0.0/8, comma-separated (empty: Prosody's default, 127.0.0.1 and ::1)"`
	HTTPExternalURL         string `split_words:"true" default:"" desc:"public base URL of Prosody's HTTP service behind a proxy (http_external_url), e.g. https://xmpp.example.org/: the websocket, BOSH and upload URLs Prosody announces start with it, and uploads are served on its host (empty: Prosody's own host names and ports)"`
	HTTPUploadExternalURL   string `split_words:"true" default:"" desc:"public base URL of the upload service (http_external_url of the upload component) when it differs from PROSODY_HTTP_EXTERNAL_URL, e.g. https://upload.example.org/; uploads are served on its host (empty: PROSODY_HTTP_EXTERNAL_URL)"`
	ConsiderWebsocketSecure string `split_words:"true" default:"false" desc:"treat every websocket connection as encrypted (consider_websocket_secure), for a TLS-terminating proxy that does not send X-Forwarded-Proto or is not in PROSODY_TRUSTED_PROXIES (boolean)"`
	ConsiderBoshSecure      string `split_words:"true" default:"false" desc:"treat every BOSH connection as encrypted (consider_bosh_secure), for a TLS-terminating proxy that does not send X-Forwarded-Proto or is not in PROSODY_TRUSTED_PROXIES (boolean)"`
	OpenmetricsAllowIps     string `split_words:"true" default:"" desc:"client addresses allowed to read Prosody's own /metrics (openmetrics_allow_ips; admin/monitoring), comma-separated IP addresses (empty: Prosody's default, 127.0.0.1 and ::1)"`
	OpenmetricsAllowCIDR    string `split_words:"true" default:"" desc:"one CIDR range also allowed to read Prosody's own /metrics (openmetrics_allow_cidr; admin/monitoring), e.g. 10.0.0.0/8 (empty: none)"`

	DeploymentType string `split_words:"true" default:"docker" desc:"deployment type: docker, compose, kubernetes, bare; read only by when blocks on deployment_type in a custom config tree (the shipped tree has none): setting it warns"`
	ScaleProfile   string `split_words:"true" default:"small" desc:"scale profile: small, medium, large, enterprise (sizes the rate limits applied with PROSODY_RESOURCE_LIMITS)"`
	ResourceLimits string `split_words:"true" default:"false" desc:"load Prosody's limits module with per-connection rate limits sized by PROSODY_SCALE_PROFILE (boolean; the production environment applies its own limits last)"`
	LegacyMode     string `split_words:"true" default:"false" desc:"also load the legacy module lists config/legacy/modules.d/*.cfg.lua (boolean)"`
	MigrationMode  string `split_words:"true" default:"false" desc:"print, at start, which feature replaces each module of the legacy module lists (boolean)"`

	FeaturesAuthModern              string `split_words:"true" default:"" desc:"feature toggle auth modern (boolean; unset: the profile decides)"`
	FeaturesAuthExternal            string `split_words:"true" default:"" desc:"feature toggle auth external (boolean; unset: the profile decides)"`
	FeaturesAuthMfa                 string `split_words:"true" default:"" desc:"feature toggle auth MFA (boolean; unset: the profile decides)"`
	FeaturesWebEnabled              string `split_words:"true" default:"" desc:"feature toggle web (boolean; unset: the profile decides)"`
	FeaturesWebUpload               string `split_words:"true" default:"" desc:"feature toggle web upload (boolean; unset: the profile decides)"`
	FeaturesWebAdmin                string `split_words:"true" default:"" desc:"feature toggle web admin (boolean; unset: the profile decides)"`
	FeaturesMobilePush              string `split_words:"true" default:"" desc:"feature toggle mobile push (boolean; unset: the profile decides)"`
	FeaturesMobileCsi               string `split_words:"true" default:"" desc:"feature toggle mobile CSI (boolean; unset: the profile decides)"`
	FeaturesMobileBattery           string `split_words:"true" default:"" desc:"feature toggle mobile battery saving (boolean; unset: the profile decides)"`
	FeaturesSecurityEnhanced        string `split_words:"true" default:"" desc:"feature toggle security enhanced (boolean; unset: the profile decides)"`
	FeaturesSecurityMonitoring      string `split_words:"true" default:"" desc:"feature toggle security monitoring (boolean; unset: the profile decides)"`
	FeaturesSecurityCompliance      string `split_words:"true" default:"" desc:"feature toggle security compliance (boolean; unset: the profile decides)"`
	FeaturesPerformanceCaching      string `split_words:"true" default:"" desc:"feature toggle performance caching (boolean; unset: the profile decides)"`
	FeaturesPerformanceClustering   string `split_words:"true" default:"" desc:"feature toggle performance clustering (boolean; unset: the profile decides)"`
	FeaturesAdminShell              string `split_words:"true" default:"" desc:"feature toggle admin shell (boolean; unset: the profile decides)"`
	FeaturesAdminAPI                string `split_words:"true" default:"" desc:"feature toggle admin API (boolean; unset: the profile decides)"`
	FeaturesAdminMonitoring         string `split_words:"true" default:"" desc:"feature toggle admin monitoring (boolean; unset: the profile decides)"`
	FeaturesAdminWeb                string `split_words:"true" default:"" desc:"feature toggle admin web (boolean; unset: the profile decides)"`
	FeaturesAuthSasl2               string `split_words:"true" default:"" desc:"feature toggle auth SASL2 (boolean; unset: the profile decides)"`
	FeaturesAuthBind2               string `split_words:"true" default:"" desc:"feature toggle auth Bind2 (boolean; unset: the profile decides)"`
	FeaturesAuthFast                string `split_words:"true" default:"" desc:"feature toggle auth FAST (boolean; unset: the profile decides)"`
	FeaturesAuthDowngradeProtection string `split_words:"true" default:"" desc:"feature toggle auth downgrade protection (boolean; unset: the profile decides)"`
	Features                        string `split_words:"true" default:"" desc:"feature changes as a list: +group/name enables, -group/name disables, comma-separated"`

	FastTokenTTL          string `split_words:"true" default:"21d" desc:"FAST token lifetime (seconds as the design writes it, 86400; a Go duration; or with d and w suffixes: 21d, 2w)"`
	RequireChannelBinding string `split_words:"true" default:"false" desc:"require SASL channel binding (boolean)"`
	HTTPUploadSizeLimit   string `split_words:"true" default:"10MiB" desc:"largest HTTP upload (bytes, or with KB MB GB KiB MiB GiB)"`
	AdminPassword         Secret `split_words:"true" default:"" desc:"password of the first admin account (secret; or PROSODY_ADMIN_PASSWORD_FILE)"`

	TLSProfile         string `split_words:"true" default:"intermediate" desc:"TLS profile: modern, intermediate, old"`
	TLSAllowSelfSigned string `split_words:"true" default:"false" desc:"allow generating and using self-signed certificates (boolean)"`
	CertsDir           string `split_words:"true" default:"/etc/prosody/certs" desc:"certificate directory (absolute path)"`
	ExtraModules       string `split_words:"true" default:"" desc:"extra Prosody modules to load, comma-separated"`
	PluginDir          string `split_words:"true" default:"" desc:"extra Prosody plugin directory (absolute path; empty: none)"`

	ConfigDir  string `split_words:"true" default:"/usr/share/prosody-pfe/config" desc:"the profile-feature-environment config tree (absolute path)"`
	CustomDir  string `split_words:"true" default:"/etc/prosody-pfe/custom" desc:"custom profiles and features (absolute path)"`
	DataDir    string `split_words:"true" default:"/var/lib/prosody" desc:"Prosody data directory, also holds generated secrets (absolute path)"`
	RuntimeDir string `split_words:"true" default:"/run/prosody-pfe" desc:"rendered config and runtime files (absolute path)"`
	HooksDir   string `split_words:"true" default:"/docker-entrypoint.d" desc:"user init hooks (absolute path)"`

	StopTimeout    string `split_words:"true" default:"10s" desc:"grace period between SIGTERM and SIGKILL (duration)"`
	Restart        string `split_words:"true" default:"" desc:"restart policy: never, on-failure, always (empty: on-failure for prosody, never for other commands)"`
	RestartMax     string `split_words:"true" default:"5" desc:"restarts allowed within the restart window before giving up"`
	RestartWindow  string `split_words:"true" default:"60s" desc:"window over which restarts are counted (duration)"`
	RestartBackoff string `split_words:"true" default:"1s" desc:"first delay before a restart, doubled each time (duration)"`
	UID            string `split_words:"true" default:"" desc:"user to run the server, or the command of plain init, as: a name or a uid; a name alone brings its primary group and supplementary groups (empty: the prosody user; for plain init the entrypoint's own)"`
	GID            string `split_words:"true" default:"" desc:"group to run the server or the plain-init command as: a name or a gid, and then no supplementary groups (empty: the user's group)"`
	LogFormat      string `split_words:"true" default:"" desc:"entrypoint log format: json, console (empty: console on a terminal, json otherwise)"`
	HealthListen   string `split_words:"true" default:":5282" desc:"health and metrics listen address ([host]:port), or off"`
	HealthInterval string `split_words:"true" default:"10s" desc:"interval of the readiness probe (duration)"`
	ReloadRestart  string `split_words:"true" default:"auto" desc:"on a config change Prosody cannot apply live: auto (graceful restart), never (keep running, warn)"`
	Watch          string `split_words:"true" default:"true" desc:"watch config, certificates and secret files and reload on change (boolean)"`
	WatchDebounce  string `split_words:"true" default:"100ms" desc:"quiet time after a change before reloading (duration)"`

	StatusToken     Secret `split_words:"true" default:"" desc:"bearer token that lets clients other than loopback read /status (secret; or PROSODY_STATUS_TOKEN_FILE; at least 16 characters, no spaces); empty: /status for loopback clients only"`
	WatchdogTimeout string `split_words:"true" default:"60s" desc:"restart Prosody when its readiness probe has failed this long while it should be serving (duration, at least 1s; 0 disables the watchdog)"`

	Notify string `split_words:"true" default:"false" desc:"plain init: give the command a NOTIFY_SOCKET (systemd's sd_notify) and answer /readyz 503 until it sends READY=1 (boolean; Prosody always gets one)"`
	// The design's own names (docs/features.md, "Seed names").
	Sasl2Timeout     string `split_words:"true" default:"" desc:"how long a client may take to log in before Prosody closes its stream: Prosody's c2s_timeout, the design's sasl2_timeout (seconds, or a duration such as 5m; empty: Prosody's default, 300 seconds)"`
	LegacyDir        string `split_words:"true" default:"" desc:"your own legacy modules.d directory of *.cfg.lua module lists, included with PROSODY_LEGACY_MODE=true and read by entrypoint profiles migrate (absolute path; empty: legacy/modules.d of the config tree)"`
	Acme             string `split_words:"true" default:"" desc:"get and renew certificates by ACME for the hosts no mounted certificate covers (boolean; empty: on when PROSODY_ACME_EMAIL is set)"`
	AcmeEmail        string `split_words:"true" default:"" desc:"contact e-mail of the ACME account; setting it turns ACME on"`
	AcmeDirectory    string `split_words:"true" default:"letsencrypt" desc:"ACME directory: letsencrypt, letsencrypt-staging, or the https:// URL of any ACME directory"`
	AcmeCAFile       string `split_words:"true" default:"" desc:"PEM file of the CA to trust for the ACME directory's HTTPS, for a private ACME server such as step-ca or Pebble (absolute path; empty: the system roots)"`
	AcmeEABKid       string `split_words:"true" default:"" desc:"External Account Binding key id, for CAs that require one (set together with PROSODY_ACME_EAB_HMAC_KEY)"`
	AcmeEABHmacKey   Secret `split_words:"true" default:"" desc:"External Account Binding HMAC key, base64url as the CA gives it (secret; or PROSODY_ACME_EAB_HMAC_KEY_FILE)"`
	AcmeChallenges   string `split_words:"true" default:"http-01" desc:"ACME challenges to answer, comma-separated: http-01, tls-alpn-01"`
	AcmeHTTPPort     string `split_words:"true" default:"80" desc:"port the entrypoint answers HTTP-01 challenges on (behind a proxy or a port mapping, the port traffic for :80 reaches)"`
	AcmeTLSPort      string `split_words:"true" default:"443" desc:"port the entrypoint answers TLS-ALPN-01 challenges on (the port traffic for :443 reaches)"`
	AcmeRenewBefore  string `split_words:"true" default:"0" desc:"renew exactly this long before the certificate expires (duration; 0: when a third of its lifetime is left, with jitter, or earlier when the CA's renewal information says so)"`
	AcmeRetryBackoff string `split_words:"true" default:"1m" desc:"first delay before retrying a failed renewal while running, doubled each time up to 6h (duration)"`
	ConfigFile       string `split_words:"true" default:"" desc:"your own prosody.cfg.lua (absolute path, e.g. a mounted /etc/prosody/prosody.cfg.lua): checked, supervised, watched and reloaded like a rendered one, the PFE tree is not used (empty: render from the tree)"`
	DataAdopt        string `split_words:"true" default:"true" desc:"when the data directory belongs to another non-root uid (the official image's prosody user), give it and that uid's files in it to prosody once, logging what changed (boolean)"`
	VerifyOnStart    string `split_words:"true" default:"false" desc:"run entrypoint verify once after Prosody is first ready and log the result (boolean; needs the admin/shell feature)"`
	SocketActivation string `split_words:"true" default:"true" desc:"the entrypoint binds Prosody's listeners (c2s, direct-TLS c2s, s2s, http, https) as root and hands them to every Prosody it starts (LISTEN_FDS), so a restart refuses no connection and ports below 1024 need no capability (boolean; false: Prosody binds its own)"`
}

// variable is one row of the variable table built from Env's tags by envconfig.
type variable struct {
	Key     string // PROSODY_...
	Default string
	Desc    string
	field   int // index into Env
	secret  bool
}

// variables returns the table of every variable, in Env's field order, from Env's tags. Keys
// follow envconfig's split_words rule (see envKey); a test checks the table against envconfig's
// own usage listing, so it is exactly what envconfig.Process would read. (Going through
// envconfig's template machinery on every Load costs ten times the rest of Load.)
func variables() ([]variable, error) {
	t := reflect.TypeFor[Env]()
	secretType := reflect.TypeFor[Secret]()
	vars := make([]variable, t.NumField())
	for i := range vars {
		f := t.Field(i)
		if f.Tag.Get("split_words") != "true" || f.Tag.Get("envconfig") != "" {
			return nil, fmt.Errorf("settings.Env field %s: want split_words and no envconfig tag", f.Name)
		}
		if f.Type != secretType && f.Type.Kind() != reflect.String {
			return nil, fmt.Errorf("settings.Env field %s: type %s; want string or Secret", f.Name, f.Type)
		}
		vars[i] = variable{
			Key:     Prefix + "_" + envKey(f.Name),
			Default: f.Tag.Get("default"),
			Desc:    f.Tag.Get("desc"),
			field:   i,
			secret:  f.Type == secretType,
		}
	}
	return vars, nil
}

// envKey is envconfig's split_words name of a field, upper-cased: words are runs of lowercase
// (or digits) with their leading capitals, and an acronym before a word is its own word
// (DBHost: DB_HOST, HTTPSPort: HTTPS_PORT, C2sPort: C2S_PORT).
func envKey(name string) string {
	isUpper := func(c byte) bool { return c >= 'A' && c <= 'Z' }
	var words []string
	for i := 0; i < len(name); {
		j := i
		if !isUpper(name[i]) {
			for j < len(name) && !isUpper(name[j]) {
				j++
			}
			words = append(words, name[i:j])
			i = j
			continue
		}
		for j < len(name) && isUpper(name[j]) {
			j++
		}
		k := j
		for k < len(name) && !isUpper(name[k]) {
			k++
		}
		if k > j && j-i >= 2 { // acronym followed by a word: split before the last capital
			words = append(words, name[i:j-1], name[j-1:k])
		} else {
			words = append(words, name[i:k])
		}
		i = k
	}
	return strings.ToUpper(strings.Join(words, "_"))
}
