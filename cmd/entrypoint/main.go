// Command entrypoint is PID 1 of a Prosody 13 container: it validates the
// environment, renders Prosody's configuration from the PFE tree, supervises
// prosody, serves health and metrics, and reloads on config changes. Any other
// command runs under the same init duties (see usage).
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the
// module's build information is used.
var version = ""

// Exit codes: the one table every verb uses. A supervised child's own code
// (or 128+N, 126, 127) passes through as it is.
const (
	exitOK       = 0
	exitFailed   = 1  // the operation failed, or found differences (diff, validate)
	exitUsage    = 2  // wrong arguments
	exitSoftware = 70 // EX_SOFTWARE: the entrypoint itself failed
	exitNoSpace  = 73 // EX_CANTCREAT: a volume is full; nothing half-written is left
	exitConfig   = 78 // EX_CONFIG: bad environment or configuration
)

func main() {
	// First thing: without handlers a Go PID 1 exits 2 on an early SIGTERM.
	sigs := supervise.Notify()
	a := &app{signals: sigs}
	os.Exit(a.run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// app carries what main sets up before run: the signal registration. Tests of
// the CLI verbs use a zero app (verbs that supervise need the signals).
type app struct {
	signals *supervise.Signals
}

const usage = `entrypoint: PID 1 for a Prosody 13 container (prosody-pfe %s)

usage:
  entrypoint [prosody [ARGS]]     run the Prosody pipeline: validate env, plan, certificates,
                                  render, check, then supervise prosody -F (the default)
  entrypoint prosodyctl ARGS      the config stages, then prosodyctl against the rendered config
  entrypoint -- CMD [ARGS]        plain init for CMD (also for any command not listed here)
  entrypoint healthcheck [--live] [--url URL]
                                  exit 0 when /readyz (or /livez) answers 200: Docker's HEALTHCHECK
  entrypoint env [--markdown]     print the effective settings and their sources (secrets redacted)
  entrypoint env generate --profile P --environment E
                                  write a commented .env file for that combination
  entrypoint profiles list|show NAME|create NAME [--from P]|validate [NAME]
  entrypoint features list|show NAME
  entrypoint render [--profile P] [--environment E] [--out FILE]
  entrypoint explain MODULE|OPTION|FEATURE
  entrypoint diff [--against FILE]
  entrypoint validate             every profile x environment renders and passes the checks
  entrypoint backup [--out FILE]  archive the data directory (SQLite online backup, files, secrets, certs)
  entrypoint restore [--verify] FILE
                                  verify an archive and restore it into the stopped data directory
  entrypoint modules list [--json]
                                  installed modules (core, community, plugin dir) and the features using them
  entrypoint version

Exit codes: the child's code; 128+N when signal N killed it; 126/127 when it cannot be
executed; 73 when a volume is full (a file the entrypoint must write does not fit; nothing
half-written is left); 78 for a configuration error found before anything starts.

Environment variables (all PROSODY_*; a VAR_FILE form exists for every secret):
`

// verbs are the commands that run to completion without supervising a
// child. They get the default signal behaviour back: Ctrl-C or SIGTERM stops
// a render, a backup or a validate at once, as for any other program.
var verbs = map[string]func(args, env []string, stdout, stderr io.Writer) int{
	"healthcheck": runHealthcheck,
	"env":         runEnv,
	"backup":      runBackup,
	"restore":     runRestore,
	"modules":     runModules,
	"verify":      runVerify,
	"profiles":    pfeVerb("profiles"),
	"features":    pfeVerb("features"),
	"render":      pfeVerb("render"),
	"explain":     pfeVerb("explain"),
	"diff":        pfeVerb("diff"),
	"validate":    pfeVerb("validate"),
}

func pfeVerb(verb string) func(args, env []string, stdout, stderr io.Writer) int {
	return func(args, env []string, stdout, stderr io.Writer) int { return runPFE(verb, args, env, stdout, stderr) }
}

func (a *app) run(args []string, env []string, stdout, stderr io.Writer) int {
	verb := ""
	if len(args) > 0 {
		verb = args[0]
	}
	if run, ok := verbs[verb]; ok {
		if a.signals != nil {
			a.signals.Stop()
		}
		return run(args[1:], env, stdout, stderr)
	}
	switch verb {
	case "", "prosody":
		return a.runProsody(args, env, stderr)
	case "prosodyctl":
		return a.runProsodyctl(args, env, stderr)
	case "--":
		if len(args) < 2 {
			fmt.Fprintln(stderr, "entrypoint: -- needs a command to run, e.g. entrypoint -- sh -c 'echo hi'")
			return exitUsage
		}
		return a.runPlain(args[1:], env, stderr)
	case "-h", "--help", "help":
		fmt.Fprintf(stdout, usage, buildVersion())
		if err := settings.Usage(stdout); err != nil {
			fmt.Fprintf(stderr, "entrypoint: %v\n", err)
			return exitSoftware
		}
		return exitOK
	case "version", "--version":
		fmt.Fprintf(stdout, "entrypoint %s\n", buildVersion())
		return exitOK
	}
	return a.runPlain(args, env, stderr)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = strings.TrimSuffix(v, "(devel)") + s.Value[:12]
			}
		}
		if v != "" {
			return v
		}
	}
	return "dev"
}
