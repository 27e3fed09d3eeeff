package settings

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// parser collects problems and warnings while Load reads and converts values.
type parser struct {
	env      map[string]string
	problems []Problem
	warnings []Warning
}

func (p *parser) problem(name, value, msg, accepted string) {
	p.problems = append(p.problems, Problem{Var: name, Value: value, Msg: msg, Accepted: accepted})
}

func (p *parser) warn(name, msg string) {
	p.warnings = append(p.warnings, Warning{Var: name, Msg: msg})
}

// Accepted values of the enumerated variables (functions, so no package state can change).
func environments() []string    { return []string{"development", "staging", "production", "testing"} }
func storages() []string        { return []string{"internal", "sqlite", "postgres"} }
func logLevels() []string       { return []string{"debug", "info", "warn", "error"} }
func deploymentTypes() []string { return []string{"docker", "compose", "kubernetes", "bare"} }
func scaleProfiles() []string   { return []string{"small", "medium", "large", "enterprise"} }
func tlsProfiles() []string     { return []string{"modern", "intermediate", "old"} }
func restartPolicies() []string { return []string{"never", "on-failure", "always"} }
func logFormats() []string      { return []string{"json", "console"} }
func reloadRestarts() []string  { return []string{"auto", "never"} }

// enum checks that val is one of accepted. Empty is allowed only when optional.
func (p *parser) enum(name, val, what string, optional bool, accepted []string) string {
	if val == "" && optional {
		return ""
	}
	for _, a := range accepted {
		if val == a {
			return val
		}
	}
	acc := strings.Join(accepted, ", ")
	if optional {
		acc += ", or empty"
	}
	if val == "" {
		p.problem(name, "", "set but empty", acc)
		return ""
	}
	p.problem(name, val, "not "+what, acc)
	return ""
}

func (p *parser) boolean(name, val string) bool {
	if val == "" {
		p.problem(name, "", "set but empty", boolAccepted)
		return false
	}
	b, err := ParseBool(val)
	if err != nil {
		p.problem(name, val, err.Error(), boolAccepted)
	}
	return b
}

// duration parses val; min is the smallest accepted value.
func (p *parser) duration(name, val string, min time.Duration) time.Duration {
	if val == "" {
		p.problem(name, "", "set but empty", durationAccepted)
		return 0
	}
	d, err := ParseDuration(val)
	switch {
	case err != nil:
		p.problem(name, val, err.Error(), durationAccepted)
	case d < min:
		p.problem(name, val, "too short", fmt.Sprintf("at least %s", min))
	}
	return d
}

// seconds parses an optional timeout written as whole seconds (the design's form, "300")
// or as a duration ("5m"); empty is 0 (not set). It must be at least a second.
func (p *parser) seconds(name, val string) time.Duration {
	val = strings.TrimSpace(val)
	if val == "" {
		return 0
	}
	const acc = "whole seconds such as 300, a duration such as 5m, or empty for Prosody's default (300 seconds)"
	d, err := ParseDuration(val)
	if n, nerr := strconv.Atoi(val); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	switch {
	case err != nil:
		p.problem(name, val, err.Error(), acc)
	case d < time.Second || d%time.Second != 0:
		p.problem(name, val, "not a whole number of seconds, at least 1", acc)
	}
	return d
}

func (p *parser) port(name, val string) int {
	if val == "" {
		p.problem(name, "", "set but empty", "a port number 1-65535")
		return 0
	}
	n, err := parsePort(val)
	if err != nil {
		p.problem(name, val, err.Error(), "a port number 1-65535")
	}
	return n
}

func (p *parser) path(name, val string, optional bool) string {
	switch {
	case val == "" && optional:
		return ""
	case val == "":
		p.problem(name, "", "set but empty", "an absolute path")
		return ""
	case !filepath.IsAbs(val):
		p.problem(name, val, "not an absolute path", "an absolute path such as /var/lib/prosody")
		return ""
	case !pfe.Printable(val):
		p.problem(name, val, "has a control character or is not UTF-8", "an absolute path of printable characters")
		return ""
	}
	return filepath.Clean(val)
}

// id reads PROSODY_UID or PROSODY_GID: a decimal id (returned) or a user or
// group name (returned as -1; the caller keeps the name).
func (p *parser) id(name, val string) int {
	val = strings.TrimSpace(val)
	if val == "" {
		return -1
	}
	const accepted = "a number 1-2147483647 or a user or group name (letters, digits, _ . -), or empty for the default"
	n, err := strconv.Atoi(val)
	switch {
	case err != nil && validAccountName(val):
		if val == "root" {
			p.problem(name, val, "Prosody refuses to run as root, and plain init runs as root when it is unset", "an unprivileged user or group, or empty for the default")
		}
		return -1
	case err != nil || n < 0 || n > 1<<31-1:
		p.problem(name, val, "not a numeric id or a name", accepted)
		return -1
	case n == 0:
		p.problem(name, val, "Prosody refuses to run as root", "a non-zero id, or empty for the default")
	}
	return n
}

// validAccountName reports whether s can be a user or group name: what
// useradd accepts by default (a letter or _ first, then letters, digits,
// _ . -, an optional trailing $), at most 32 characters.
func validAccountName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-'):
		case i > 0 && i == len(s)-1 && c == '$':
		default:
			return false
		}
	}
	return true
}

// build converts s.raw into the typed fields of s.
func (p *parser) build(s *Settings) {
	r := &s.raw
	s.Profile = p.profile(r.Profile)
	s.Environment = p.enum("PROSODY_ENVIRONMENT", r.Environment, "an environment", false, environments())
	s.domains = p.domainList(r.Domain)
	s.Admins = p.admins(r.Admins, s.domains)

	s.Storage = p.enum("PROSODY_STORAGE", r.Storage, "a storage backend", false, storages())
	s.DBHost = strings.TrimSpace(r.DBHost)
	switch {
	case strings.ContainsAny(s.DBHost, " \t\r\n"), !strings.HasPrefix(s.DBHost, "/") && strings.Contains(s.DBHost, "/"):
		p.problem("PROSODY_DB_HOST", r.DBHost, "not a host name or address", "a host name, IP address, or the absolute path of a Unix socket directory")
	case strings.HasPrefix(s.DBHost, "/"):
		s.DBHost = filepath.Clean(s.DBHost) // PostgreSQL accepts a Unix socket directory as host
	}
	s.DBPort = p.port("PROSODY_DB_PORT", r.DBPort)
	s.DBName, s.DBUser, s.DBPassword = r.DBName, r.DBUser, r.DBPassword
	if s.Storage == "postgres" {
		for _, req := range []struct{ name, val string }{
			{"PROSODY_DB_HOST", s.DBHost}, {"PROSODY_DB_NAME", s.DBName}, {"PROSODY_DB_USER", s.DBUser},
		} {
			if req.val == "" {
				p.problem(req.name, "", "required for PROSODY_STORAGE=postgres but empty", "a non-empty value")
			}
		}
		if !s.DBPassword.IsSet() {
			p.problem("PROSODY_DB_PASSWORD", "", "required for PROSODY_STORAGE=postgres but empty", "a password in PROSODY_DB_PASSWORD or a file named by PROSODY_DB_PASSWORD_FILE")
		}
	} else if s.Storage != "" {
		for _, name := range []string{"PROSODY_DB_HOST", "PROSODY_DB_PASSWORD"} {
			if s.sources[name] == SourceEnv || s.sources[name] == SourceFile {
				p.warn(name, "ignored: PROSODY_STORAGE is "+s.Storage+", not postgres")
			}
		}
	}

	s.AllowRegistration = p.boolean("PROSODY_ALLOW_REGISTRATION", r.AllowRegistration)
	s.LogLevel = p.enum("PROSODY_LOG_LEVEL", r.LogLevel, "a log level", true, logLevels())
	if r.LogLevel == "" {
		s.LogLevel = "info"
		if s.Environment == "development" {
			s.LogLevel = "debug"
		}
	}

	s.C2SPort = p.port("PROSODY_C2S_PORT", r.C2sPort)
	s.S2SPort = p.port("PROSODY_S2S_PORT", r.S2sPort)
	s.HTTPPort = p.port("PROSODY_HTTP_PORT", r.HTTPPort)
	s.HTTPSPort = p.port("PROSODY_HTTPS_PORT", r.HTTPSPort)
	s.Interfaces = p.interfaces("PROSODY_INTERFACES", r.Interfaces)
	p.httpProxy(s, r)

	if dt, ok := p.designValue("PROSODY_DEPLOYMENT_TYPE", r.DeploymentType); ok {
		s.DeploymentType = p.enum("PROSODY_DEPLOYMENT_TYPE", dt, "a deployment type", false, deploymentTypes())
	}
	if _, set := p.env["PROSODY_DEPLOYMENT_TYPE"]; set && s.DeploymentType != "" {
		// Kept for custom `when` blocks; nothing shipped reads it, so setting it is
		// usually a mistaken belief that it configures something.
		p.warn("PROSODY_DEPLOYMENT_TYPE", "changes nothing by itself: only a `when` block on deployment_type in your own config "+
			"tree reads it (the shipped tree has none); what differs between deployments is set by PROSODY_ENVIRONMENT, "+
			"PROSODY_INTERFACES and the other settings the compose files and Kubernetes overlays pass (docs/deployment.md)")
	}
	s.ScaleProfile = p.enum("PROSODY_SCALE_PROFILE", r.ScaleProfile, "a scale profile", false, scaleProfiles())
	s.ResourceLimits = p.boolean("PROSODY_RESOURCE_LIMITS", r.ResourceLimits)
	s.LegacyMode = p.boolean("PROSODY_LEGACY_MODE", r.LegacyMode)
	s.MigrationMode = p.boolean("PROSODY_MIGRATION_MODE", r.MigrationMode)

	s.Toggles = p.toggles()
	s.Features = p.features(r.Features)

	// The design writes the FAST token lifetime in seconds (PROSODY_FAST_TOKEN_TTL=86400).
	if n, err := strconv.Atoi(strings.TrimSpace(r.FastTokenTTL)); err == nil {
		s.FastTokenTTL = time.Duration(n) * time.Second
		if n < 60 {
			p.problem("PROSODY_FAST_TOKEN_TTL", r.FastTokenTTL, "too short", "at least 60 seconds (1m)")
		}
	} else {
		s.FastTokenTTL = p.duration("PROSODY_FAST_TOKEN_TTL", r.FastTokenTTL, time.Minute)
	}
	s.RequireChannelBinding = p.boolean("PROSODY_REQUIRE_CHANNEL_BINDING", r.RequireChannelBinding)
	if r.HTTPUploadSizeLimit == "" {
		p.problem("PROSODY_HTTP_UPLOAD_SIZE_LIMIT", "", "set but empty", sizeAccepted)
	} else if n, err := ParseSize(r.HTTPUploadSizeLimit); err != nil {
		p.problem("PROSODY_HTTP_UPLOAD_SIZE_LIMIT", r.HTTPUploadSizeLimit, err.Error(), sizeAccepted)
	} else {
		s.HTTPUploadSizeLimit = n
	}
	s.AdminPassword = r.AdminPassword

	s.TLSProfile = p.enum("PROSODY_TLS_PROFILE", r.TLSProfile, "a TLS profile", false, tlsProfiles())
	s.TLSAllowSelfSigned = p.boolean("PROSODY_TLS_ALLOW_SELF_SIGNED", r.TLSAllowSelfSigned)
	s.CertsDir = p.path("PROSODY_CERTS_DIR", r.CertsDir, false)
	s.ExtraModules = p.modules(r.ExtraModules)
	s.PluginDir = p.path("PROSODY_PLUGIN_DIR", r.PluginDir, true)

	s.ConfigDir = p.path("PROSODY_CONFIG_DIR", r.ConfigDir, false)
	s.CustomDir = p.path("PROSODY_CUSTOM_DIR", r.CustomDir, false)
	s.DataDir = p.path("PROSODY_DATA_DIR", r.DataDir, false)
	s.RuntimeDir = p.path("PROSODY_RUNTIME_DIR", r.RuntimeDir, false)
	s.HooksDir = p.path("PROSODY_HOOKS_DIR", r.HooksDir, false)

	s.StopTimeout = p.duration("PROSODY_STOP_TIMEOUT", r.StopTimeout, time.Millisecond)
	s.Restart = p.enum("PROSODY_RESTART", r.Restart, "a restart policy", true, restartPolicies())
	if r.RestartMax == "" {
		p.problem("PROSODY_RESTART_MAX", "", "set but empty", "a number 0 or more")
	} else if n, err := strconv.Atoi(strings.TrimSpace(r.RestartMax)); err != nil || n < 0 {
		p.problem("PROSODY_RESTART_MAX", r.RestartMax, "not a count", "a number 0 or more")
	} else {
		s.RestartMax = n
	}
	s.RestartWindow = p.duration("PROSODY_RESTART_WINDOW", r.RestartWindow, time.Millisecond)
	s.RestartBackoff = p.duration("PROSODY_RESTART_BACKOFF", r.RestartBackoff, 0)
	s.UID = p.id("PROSODY_UID", r.UID)
	s.GID = p.id("PROSODY_GID", r.GID)
	s.UserSpec, s.GroupSpec = strings.TrimSpace(r.UID), strings.TrimSpace(r.GID)
	s.Notify = p.boolean("PROSODY_NOTIFY", r.Notify)
	s.LogFormat = p.enum("PROSODY_LOG_FORMAT", r.LogFormat, "a log format", true, logFormats())
	healthPort := p.healthListen(s, r.HealthListen)
	s.HealthInterval = p.duration("PROSODY_HEALTH_INTERVAL", r.HealthInterval, 100*time.Millisecond)
	s.StatusToken = p.statusToken(r.StatusToken)
	s.WatchdogTimeout = p.watchdogTimeout(r.WatchdogTimeout)
	s.VerifyOnStart = p.boolean("PROSODY_VERIFY_ON_START", r.VerifyOnStart)
	s.ReloadRestart = p.enum("PROSODY_RELOAD_RESTART", r.ReloadRestart, "a reload restart policy", false, reloadRestarts())
	s.Watch = p.boolean("PROSODY_WATCH", r.Watch)
	s.WatchDebounce = p.duration("PROSODY_WATCH_DEBOUNCE", r.WatchDebounce, 0)
	s.ACME = p.acme(r)

	s.SASL2Timeout = p.seconds("PROSODY_SASL2_TIMEOUT", r.Sasl2Timeout)
	s.LegacyDir = p.path("PROSODY_LEGACY_DIR", r.LegacyDir, true)

	s.ConfigFile = p.path("PROSODY_CONFIG_FILE", r.ConfigFile, true)
	s.DataAdopt = p.boolean("PROSODY_DATA_ADOPT", r.DataAdopt)

	s.SocketActivation = p.boolean("PROSODY_SOCKET_ACTIVATION", r.SocketActivation)

	p.portConflicts(s, healthPort)
	p.environmentWarnings(s)
}
