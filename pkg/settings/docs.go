package settings

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// Usage writes every variable with its default and description, as a table, for --help. The
// listing is envconfig's, from Env's tags. The error is the writer's.
func Usage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	const format = "The entrypoint is configured by these environment variables:\n\n" +
		"VARIABLE\tDEFAULT\tDESCRIPTION\n" +
		"{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"
	if err := envconfig.Usagef(Prefix, &Env{}, tw, format); err != nil {
		return fmt.Errorf("write usage: %w", err)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write usage: %w", err)
	}
	_, err := io.WriteString(w, "\n"+usageNotes)
	if err != nil {
		return fmt.Errorf("write usage: %w", err)
	}
	return nil
}

const usageNotes = `Secrets can be read from a file: PROSODY_DB_PASSWORD_FILE, PROSODY_ADMIN_PASSWORD_FILE,
PROSODY_STATUS_TOKEN_FILE (one trailing newline is trimmed; setting both VAR and VAR_FILE is an error).
Any PROSODY_FEATURES_<GROUP>_<NAME> variable switches a feature on or off (boolean).
Booleans accept true/false, 1/0, yes/no, on/off in any case.
`

// Markdown writes the README table of every variable: name, default and description, then the
// notes on secrets files and feature toggles. The output is deterministic. The error is the
// writer's.
func Markdown(w io.Writer) error {
	vars, err := variables()
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("| Variable | Default | Description |\n|---|---|---|\n")
	for _, v := range vars {
		def := ""
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(bw, "| `%s` | %s | %s |\n", v.Key, def, strings.ReplaceAll(v.Desc, "|", `\|`))
	}
	bw.WriteString("\n" + usageNotes)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// recommended returns the values Generate writes uncommented for a profile and environment,
// keyed by variable name.
func recommended(profile, environment string) map[string]string {
	r := map[string]string{
		"PROSODY_PROFILE":     profile,
		"PROSODY_ENVIRONMENT": environment,
	}
	switch environment {
	case "development", "testing":
		r["PROSODY_DOMAIN"] = "localhost"
		r["PROSODY_ADMINS"] = "admin@localhost"
		r["PROSODY_ALLOW_REGISTRATION"] = "true"
		r["PROSODY_TLS_ALLOW_SELF_SIGNED"] = "true"
		r["PROSODY_LOG_LEVEL"] = "debug"
		if environment == "testing" {
			r["PROSODY_LOG_LEVEL"] = "info"
			r["PROSODY_WATCH"] = "false"
		}
	case "staging":
		r["PROSODY_DOMAIN"] = "staging.example.org"
		r["PROSODY_ADMINS"] = "admin@staging.example.org"
		r["PROSODY_ALLOW_REGISTRATION"] = "false"
		r["PROSODY_TLS_ALLOW_SELF_SIGNED"] = "false"
		r["PROSODY_LOG_LEVEL"] = "info"
	default: // production
		r["PROSODY_DOMAIN"] = "example.org"
		r["PROSODY_ADMINS"] = "admin@example.org"
		r["PROSODY_ALLOW_REGISTRATION"] = "false"
		r["PROSODY_TLS_ALLOW_SELF_SIGNED"] = "false"
		r["PROSODY_LOG_LEVEL"] = "info"
		r["PROSODY_LOG_FORMAT"] = "json"
	}
	switch profile {
	case "minimal":
		r["PROSODY_STORAGE"] = "internal"
		r["PROSODY_SCALE_PROFILE"] = "small"
	case "enterprise":
		r["PROSODY_STORAGE"] = "postgres"
		r["PROSODY_DB_HOST"] = "postgres"
		r["PROSODY_DB_PASSWORD_FILE"] = "/run/secrets/db_password"
		r["PROSODY_SCALE_PROFILE"] = "large"
		r["PROSODY_RESOURCE_LIMITS"] = "true"
		if environment == "production" {
			r["PROSODY_TLS_PROFILE"] = "modern"
			r["PROSODY_REQUIRE_CHANNEL_BINDING"] = "true"
		}
	case "development":
		r["PROSODY_STORAGE"] = "sqlite"
	}
	return r
}

// Generate writes a commented .env file for a profile and environment: every variable with its
// description and default, set to a sensible value for the combination where it matters (for
// production: registration off, no self-signed certificates, a real domain placeholder; for
// development: localhost, registration on, debug logging) and commented out otherwise. Secrets
// are never written, only a *_FILE path where the combination needs one. The profile must have
// the form of a profile name and the environment must be one Load accepts.
func Generate(w io.Writer, profile, environment string) error {
	return GenerateWith(w, profile, environment, nil)
}

// Toggle is a feature toggle and its value, for GenerateWith.
type Toggle struct {
	Name string // PROSODY_FEATURES_...
	On   bool
}

// GenerateWith is Generate with the profile's feature toggles written set to their
// values (as the design's env generator writes a profile's toggles): a toggle that is
// a variable of the table replaces its commented line, any other is added in a section
// of its own at the end.
func GenerateWith(w io.Writer, profile, environment string, toggles []Toggle) error {
	if err := pfe.CheckName("profile", profile); err != nil {
		return fmt.Errorf("generate env file: %w", err)
	}
	if !slices.Contains(environments(), environment) {
		return fmt.Errorf("generate env file: environment %q is unknown; accepted: %s", environment, strings.Join(environments(), ", "))
	}
	vars, err := variables()
	if err != nil {
		return err
	}
	rec := recommended(profile, environment)
	known := map[string]bool{}
	for _, v := range vars {
		known[v.Key] = true
	}
	var extra []Toggle
	for _, tg := range toggles {
		if !strings.HasPrefix(tg.Name, featuresPrefix) {
			return fmt.Errorf("generate env file: %q is not a feature toggle", tg.Name)
		}
		if known[tg.Name] {
			rec[tg.Name] = strconv.FormatBool(tg.On)
		} else {
			extra = append(extra, tg)
		}
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# prosody-pfe environment for profile %q in %s.\n", profile, environment)
	bw.WriteString("# Lines starting with \"# PROSODY_\" show the default; uncomment to change.\n")
	for _, v := range vars {
		fmt.Fprintf(bw, "\n# %s\n", v.Desc)
		if v.Default != "" {
			fmt.Fprintf(bw, "# default: %s\n", v.Default)
		}
		if val, ok := rec[v.Key]; ok && !v.secret {
			fmt.Fprintf(bw, "%s=%s\n", v.Key, val)
		} else {
			fmt.Fprintf(bw, "# %s=%s\n", v.Key, v.Default)
		}
		if v.secret {
			file := v.Key + "_FILE"
			if val, ok := rec[file]; ok {
				fmt.Fprintf(bw, "%s=%s\n", file, val)
			} else {
				fmt.Fprintf(bw, "# %s=/run/secrets/%s\n", file, strings.ToLower(strings.TrimPrefix(v.Key, Prefix+"_")))
			}
		}
	}
	if len(extra) > 0 {
		fmt.Fprintf(bw, "\n# The features of profile %s, as toggles (true: the profile has it).\n", profile)
		for _, tg := range extra {
			fmt.Fprintf(bw, "%s=%t\n", tg.Name, tg.On)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	return nil
}
