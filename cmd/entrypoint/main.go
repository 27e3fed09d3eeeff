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

	"github.com/prosody-pfe/prosody-pfe/pkg/cmdroute"
	"github.com/prosody-pfe/prosody-pfe/pkg/earlysignal"
	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the
// module's build information is used.
var version = ""

func main() {
	// Without handlers a Go PID 1 exits 2 on an early SIGTERM: package
	// earlysignal registered for every signal during package initialisation,
	// right after os/signal; the supervisor adopts that registration.
	sigs := supervise.Adopt(earlysignal.Take())
	a := &app{signals: sigs}
	os.Exit(a.run(os.Args[0], os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
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
  entrypoint -FLAG ...            the same, with these flags for prosody
  entrypoint prosodyctl ARGS      the config stages, then prosodyctl against the rendered config
  entrypoint register|adduser|passwd|deluser|check|cert|shell|about|... ARGS
                                  the same for prosodyctl's commands, as the official image does
  entrypoint -- CMD [ARGS]        plain init for CMD (also for any command not listed here)
  prosodyctl ARGS                 (the wrapper first in PATH, for docker exec) prosodyctl
                                  against the running server's config
  entrypoint healthcheck [--live] [--url URL]
                                  exit 0 when /readyz (or /livez) answers 200: Docker's HEALTHCHECK
  entrypoint env [--markdown]     print the effective settings and their sources (secrets redacted)
  entrypoint env generate [P [E]] [--out DIR [--all]]
                                  a commented .env file with the profile's toggles; --out writes
                                  DIR/.env.P.E, --all for every environment
  entrypoint profiles list|show NAME|create NAME [FROM]|validate [NAME|--all]|generate [P [E [OUT]]]
                    |features|migrate NAME|help   (the design's profile manager; aliases ls, check, new, gen)
  entrypoint features list|show NAME|create GROUP/NAME [--component TYPE]
  entrypoint generate [P [E [OUT]]]  render profile P in environment E
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
	"generate":    pfeVerb("generate"),
}

func pfeVerb(verb string) func(args, env []string, stdout, stderr io.Writer) int {
	return func(args, env []string, stdout, stderr io.Writer) int { return runPFE(verb, args, env, stdout, stderr) }
}

// run dispatches one command line by the rules of cmdroute.Classify (the
// README's command table). argv0 is the name it was invoked by: as the
// prosodyctl wrapper in PATH it runs prosodyctl against the live config.
func (a *app) run(argv0 string, args []string, env []string, stdout, stderr io.Writer) int {
	r := cmdroute.Classify(argv0, args, func(name string) bool { _, ok := verbs[name]; return ok })
	switch r.Kind {
	case cmdroute.Verb:
		if a.signals != nil {
			a.signals.Stop()
		}
		return verbs[r.Args[0]](r.Args[1:], env, stdout, stderr)
	case cmdroute.Server:
		return a.runProsody(r.Args, env, stderr)
	case cmdroute.Prosodyctl:
		return a.runProsodyctl(r.Args, env, stderr)
	case cmdroute.LiveProsodyctl:
		return a.runLiveProsodyctl(r.Args, env, stderr)
	case cmdroute.Help:
		fmt.Fprintf(stdout, usage, buildVersion())
		if err := settings.Usage(stdout); err != nil {
			fmt.Fprintf(stderr, "entrypoint: %v\n", err)
			return exitcode.Software
		}
		return exitcode.OK
	case cmdroute.Version:
		fmt.Fprintf(stdout, "entrypoint %s\n", buildVersion())
		return exitcode.OK
	case cmdroute.Usage:
		fmt.Fprintf(stderr, "entrypoint: %s\n", r.Reason)
		return exitcode.Usage
	}
	return a.runPlain(r.Args, env, stderr)
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
