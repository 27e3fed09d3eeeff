package pfe

import (
	"net/url"
	"strconv"
	"time"
)

// Inputs are the plan inputs (docs/config-format.md, "Plan inputs"). They come from the
// validated settings; this package reads no environment variables. A zero string, port,
// size or duration means "not set": a setting that is exactly {"$var": name} of an unset
// input is left out, and a `when` condition of null matches it.
type Inputs struct {
	Profile     string
	Environment string
	// Domains become one VirtualHost each, in this order; the first is $var "domain".
	Domains []string
	Admins  []string
	// Storage is "internal", "sqlite", "postgres", ... as PROSODY_STORAGE names it.
	Storage string
	DBHost  string
	DBPort  int
	DBName  string
	DBUser  string
	// AllowRegistration nil means not set.
	AllowRegistration *bool
	// LogLevel empty means the environment's log_level.
	LogLevel  string
	C2SPort   int
	S2SPort   int
	HTTPPort  int
	HTTPSPort int
	// DeploymentType, ScaleProfile and ResourceLimits are the seeds' deployment knobs,
	// available to `when` blocks (core/global.json sizes the limits module by them).
	DeploymentType string
	ScaleProfile   string
	ResourceLimits bool
	// Interfaces are the listen addresses (Prosody's `interfaces`); empty means not set.
	Interfaces []string
	// UploadSizeLimit is in bytes.
	UploadSizeLimit int64
	// FastTokenTTL is rendered as whole seconds.
	FastTokenTTL time.Duration
	// C2STimeout is Prosody's c2s_timeout (the design's sasl2_timeout), rendered as
	// whole seconds; 0 means not set.
	C2STimeout            time.Duration
	RequireChannelBinding bool
	TLSProfile            string
	DataDir               string
	// ConfigDir is the built-in tree's directory as Prosody reads it, for $tree values;
	// empty: the directory the tree was loaded from, made absolute.
	ConfigDir  string
	RuntimeDir string
	CertsDir   string
	// Legacy includes legacy/modules.d/*.cfg.lua verbatim.
	Legacy bool
	// Toggles maps raw PROSODY_FEATURES_* variable names to "true" or "false".
	Toggles map[string]string
	// FeatureList is PROSODY_FEATURES: comma-separated "+group/name" (or bare) to enable,
	// "-group/name" to disable.
	FeatureList string
	// PluginPaths are extra module directories (Prosody's plugin_paths), searched
	// before Prosody's own; empty means not set.
	PluginPaths []string
	// ExtraModules are added to the global modules_enabled after every layer.
	ExtraModules []string

	// Prosody's HTTP service behind a proxy or in a cluster. Empty lists and strings and
	// false leave Prosody's own defaults (plain HTTP on loopback, loopback as the only
	// trusted proxy and /metrics reader, URLs from Prosody's own ports and host names).
	HTTPInterfaces  []string // http_interfaces
	HTTPSInterfaces []string // https_interfaces
	TrustedProxies  []string // trusted_proxies: addresses or CIDR ranges
	HTTPExternalURL string   // http_external_url: an absolute http(s) URL
	// UploadExternalURL is the upload service's own public URL; empty means HTTPExternalURL.
	// The input upload_external_url is the effective one, and upload_http_host its host name:
	// the upload component must answer on the host its URLs name, or Prosody answers 404.
	UploadExternalURL       string
	ConsiderWebsocketSecure bool
	ConsiderBoshSecure      bool
	OpenmetricsAllowIPs     []string // openmetrics_allow_ips
	OpenmetricsAllowCIDR    string   // openmetrics_allow_cidr: one CIDR range
}

// inputNames are the names usable in $var and `when`.
func isInputName(name string) bool {
	switch name {
	case "profile", "environment", "domain", "domains", "admins", "storage", "db_host", "db_port",
		"db_name", "db_user", "allow_registration", "log_level", "c2s_port", "s2s_port", "http_port",
		"https_port", "interfaces", "deployment_type", "scale_profile", "resource_limits", "upload_size_limit", "fast_token_ttl", "c2s_timeout", "require_channel_binding",
		"tls_profile", "data_dir", "runtime_dir", "certs_dir", "plugin_paths",
		"http_interfaces", "https_interfaces", "trusted_proxies", "http_external_url", "upload_external_url",
		"upload_http_host", "consider_websocket_secure", "consider_bosh_secure", "openmetrics_allow_ips",
		"openmetrics_allow_cidr":
		return true
	}
	return false
}

// inputValue returns the value of a plan input as a plain Go value (string, bool, int64,
// []any), and whether it is set. logLevel is the effective log level.
func (in *Inputs) inputValue(name, logLevel string) (any, bool) {
	str := func(s string) (any, bool) { return s, s != "" }
	num := func(n int64) (any, bool) { return n, n != 0 }
	list := func(l []string) (any, bool) {
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, true
	}
	switch name {
	case "profile":
		return str(in.Profile)
	case "environment":
		return str(in.Environment)
	case "domain":
		if len(in.Domains) == 0 {
			return "", false
		}
		return in.Domains[0], true
	case "domains":
		return list(in.Domains)
	case "admins":
		return list(in.Admins)
	case "storage":
		return str(in.Storage)
	case "db_host":
		return str(in.DBHost)
	case "db_port":
		return num(int64(in.DBPort))
	case "db_name":
		return str(in.DBName)
	case "db_user":
		return str(in.DBUser)
	case "allow_registration":
		if in.AllowRegistration == nil {
			return false, false
		}
		return *in.AllowRegistration, true
	case "log_level":
		return str(logLevel)
	case "c2s_port":
		return num(int64(in.C2SPort))
	case "s2s_port":
		return num(int64(in.S2SPort))
	case "http_port":
		return num(int64(in.HTTPPort))
	case "https_port":
		return num(int64(in.HTTPSPort))
	case "deployment_type":
		return str(in.DeploymentType)
	case "scale_profile":
		return str(in.ScaleProfile)
	case "resource_limits":
		return in.ResourceLimits, true
	case "interfaces":
		v, _ := list(in.Interfaces)
		return v, len(in.Interfaces) > 0
	case "upload_size_limit":
		return num(in.UploadSizeLimit)
	case "fast_token_ttl":
		return num(int64(in.FastTokenTTL / time.Second))
	case "c2s_timeout":
		return num(int64(in.C2STimeout / time.Second))
	case "require_channel_binding":
		return in.RequireChannelBinding, true
	case "tls_profile":
		return str(in.TLSProfile)
	case "data_dir":
		return str(in.DataDir)
	case "runtime_dir":
		return str(in.RuntimeDir)
	case "certs_dir":
		return str(in.CertsDir)
	case "plugin_paths":
		v, _ := list(in.PluginPaths)
		return v, len(in.PluginPaths) > 0
	case "http_interfaces":
		v, _ := list(in.HTTPInterfaces)
		return v, len(in.HTTPInterfaces) > 0
	case "https_interfaces":
		v, _ := list(in.HTTPSInterfaces)
		return v, len(in.HTTPSInterfaces) > 0
	case "trusted_proxies":
		v, _ := list(in.TrustedProxies)
		return v, len(in.TrustedProxies) > 0
	case "http_external_url":
		return str(in.HTTPExternalURL)
	case "upload_external_url":
		return str(in.uploadExternalURL())
	case "upload_http_host":
		u, err := url.Parse(in.uploadExternalURL())
		if err != nil {
			return "", false
		}
		return str(u.Hostname())
	case "consider_websocket_secure":
		return in.ConsiderWebsocketSecure, true
	case "consider_bosh_secure":
		return in.ConsiderBoshSecure, true
	case "openmetrics_allow_ips":
		v, _ := list(in.OpenmetricsAllowIPs)
		return v, len(in.OpenmetricsAllowIPs) > 0
	case "openmetrics_allow_cidr":
		return str(in.OpenmetricsAllowCIDR)
	}
	return nil, false
}

// uploadExternalURL is the upload service's public URL: its own, or the HTTP service's.
func (in *Inputs) uploadExternalURL() string {
	if in.UploadExternalURL != "" {
		return in.UploadExternalURL
	}
	return in.HTTPExternalURL
}

// conditionString is the canonical text form of a scalar for `when` comparisons.
func conditionString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return ""
}
