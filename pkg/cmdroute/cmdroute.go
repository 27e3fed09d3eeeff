// Package cmdroute decides what the container's command means: the
// entrypoint's own verbs, the Prosody server, a prosodyctl command run
// against the rendered config (as the official prosody/prosody image passes
// them through), flags for prosody, or any other program under plain init.
// It is the one table of those rules; the README's command table is its text.
package cmdroute

import (
	"flag"
	"path/filepath"
	"slices"
	"strings"
)

// Kind is what a command line is routed to.
type Kind int

const (
	// Server runs the Prosody pipeline; Args are extra arguments for prosody.
	Server Kind = iota
	// Verb runs an entrypoint verb (render, backup, …); Args[0] is its name.
	Verb
	// Prosodyctl runs the config stages, then prosodyctl Args against the
	// rendered config.
	Prosodyctl
	// LiveProsodyctl is prosodyctl as called inside a running container
	// (`docker exec CONTAINER prosodyctl …`, through the wrapper first in
	// PATH): prosodyctl Args against the live config, no stages run.
	LiveProsodyctl
	// Plain runs Args as a program under plain init.
	Plain
	// Help prints the usage; Version prints the version.
	Help
	Version
	// Usage is a mistake: Reason says what to do instead; exit 2.
	Usage
)

// Route is a classified command line.
type Route struct {
	Kind   Kind
	Args   []string
	Reason string // for Usage
}

// ProsodyctlCommands are prosodyctl's commands that run as the container's
// command (`docker run IMAGE register alice example.com pw`), as in the
// official image. prosodyctl's `version` is not among them: `version` is the
// entrypoint's (`entrypoint prosodyctl version` asks prosodyctl).
func ProsodyctlCommands() []string {
	return []string{"about", "adduser", "cert", "check", "deluser", "install", "list", "lua_paths",
		"passwd", "register", "remove", "shell", "unregister"}
}

// daemonCommands manage a daemonized Prosody through its pid file: as the
// container's command there is no such daemon.
func daemonCommands() []string { return []string{"reload", "restart", "start", "status", "stop"} }

// Classify routes the command line argv0 args (os.Args). isVerb reports
// whether a name is an entrypoint verb that runs to completion.
//
// The rules, in order (the README's table):
//   - invoked as prosodyctl (the wrapper in PATH): LiveProsodyctl;
//   - no argument or "prosody": Server;
//   - an entrypoint verb: Verb;
//   - help, -h, --help: Help; version, --version: Version;
//   - "prosodyctl": Prosodyctl with the rest;
//   - a prosodyctl command (ProsodyctlCommands, or mod_NAME): Prosodyctl;
//   - a daemon command (start, stop, restart, reload, status): Usage;
//   - "--": Plain with the rest (Usage when nothing follows);
//   - another argument starting with "-": Server with these flags for prosody;
//   - anything else: Plain.
func Classify(argv0 string, args []string, isVerb func(string) bool) Route {
	if filepath.Base(argv0) == "prosodyctl" {
		return Route{Kind: LiveProsodyctl, Args: args}
	}
	if len(args) == 0 {
		return Route{Kind: Server}
	}
	first := args[0]
	switch {
	case first == "prosody":
		return Route{Kind: Server, Args: args[1:]}
	case isVerb != nil && isVerb(first):
		return Route{Kind: Verb, Args: args}
	case first == "help" || first == "-h" || first == "--help":
		return Route{Kind: Help}
	case first == "version" || first == "--version":
		return Route{Kind: Version}
	case first == "prosodyctl":
		return Route{Kind: Prosodyctl, Args: args[1:]}
	case slices.Contains(ProsodyctlCommands(), first) || strings.HasPrefix(first, "mod_"):
		return Route{Kind: Prosodyctl, Args: args}
	case slices.Contains(daemonCommands(), first):
		return Route{Kind: Usage, Reason: "prosodyctl " + first + " manages a daemonized Prosody; in a container the server is the default command (prosody): " +
			"run it with no command, and use `docker exec CONTAINER prosodyctl " + first + "` beside a running one"}
	case first == "--":
		if len(args) < 2 {
			return Route{Kind: Usage, Reason: "-- needs a command to run, e.g. entrypoint -- sh -c 'echo hi'"}
		}
		return Route{Kind: Plain, Args: args[1:]}
	case strings.HasPrefix(first, "-"):
		return Route{Kind: Server, Args: args}
	}
	return Route{Kind: Plain, Args: args}
}

// ParseInterspersed parses flags anywhere among args with fs and returns the
// positional arguments in order (the flag package stops at the first one).
// The error is fs.Parse's; what fs prints on it is set by fs.SetOutput.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
