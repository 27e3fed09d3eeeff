package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/cmdroute"
	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfecli"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// loadSettings reads and validates the environment. Problems are printed to
// stderr, all at once; ok is false when the caller must exit 78.
func loadSettings(env []string, stderr io.Writer) (*settings.Settings, bool) {
	st, warnings, err := settings.Load(env)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "entrypoint: warning: %s\n", w)
	}
	if err != nil {
		printSettingsError(stderr, err)
		return nil, false
	}
	return st, true
}

// begin is the preamble of the verbs that need the settings and a logger:
// settings, then the root logger (level "" follows PROSODY_LOG_LEVEL).
func begin(env []string, stderr io.Writer, level string) (*settings.Settings, *zap.Logger, bool) {
	st, ok := loadSettings(env, stderr)
	if !ok {
		return nil, nil, false
	}
	return st, initsteps.RootLogger(stderr, level)(st), true
}

// printSettingsError prints why the environment could not be loaded: every
// problem at once when err holds *settings.Problems, else err itself.
func printSettingsError(stderr io.Writer, err error) {
	var probs *settings.Problems
	if errors.As(err, &probs) {
		fmt.Fprintf(stderr, "entrypoint: the environment has %d problem(s); nothing was started:\n%s\n", len(probs.List), probs.Error())
		return
	}
	fmt.Fprintf(stderr, "entrypoint: reading the environment: %v\n", err)
}

// runHealthcheck is Docker's HEALTHCHECK: no curl, no shell.
func runHealthcheck(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	live := fs.Bool("live", false, "ask /livez instead of /readyz")
	url := fs.String("url", "", "the endpoint to ask (default: from PROSODY_HEALTH_LISTEN)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return exitcode.Usage
	}
	target := *url
	if target == "" {
		path := health.ReadyPath
		if *live {
			path = health.LivePath
		}
		var err error
		if target, err = health.URLFromEnv(env, path); err != nil {
			fmt.Fprintf(stderr, "healthcheck: %v\n", err)
			return exitcode.Failed
		}
	}
	return health.Healthcheck(context.Background(), target, *timeout, stdout)
}

// runEnv prints the effective settings, the variables' documentation, or a
// generated .env file.
func runEnv(args, env []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			if err := settings.Usage(stdout); err != nil {
				fmt.Fprintf(stderr, "entrypoint env: %v\n", err)
				return exitcode.Software
			}
			return exitcode.OK
		case "--markdown":
			if err := settings.Markdown(stdout); err != nil {
				fmt.Fprintf(stderr, "entrypoint env: %v\n", err)
				return exitcode.Software
			}
			return exitcode.OK
		case "generate":
			return runEnvGenerate(args[1:], env, stdout, stderr)
		default:
			fmt.Fprintf(stderr, "entrypoint env: unknown argument %q; accepted: --help, --markdown, generate\n", args[0])
			return exitcode.Usage
		}
	}
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitcode.Config
	}
	if err := st.WriteTable(stdout); err != nil {
		return exitcode.Software
	}
	return exitcode.OK
}

// runEnvGenerate writes the .env file of a profile and environment (the design's env
// generator): to stdout, or as DIR/.env.P.E with --out DIR, for every environment with --all.
func runEnvGenerate(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("env generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("profile", "standard", "profile to generate for (or the first argument)")
	environment := fs.String("environment", "production", "environment to generate for (or the second argument)")
	out := fs.String("out", "", "write DIR/.env.PROFILE.ENVIRONMENT instead of stdout")
	all := fs.Bool("all", false, "every environment of the profile (needs --out)")
	pos, err := cmdroute.ParseInterspersed(fs, args)
	if err != nil || len(pos) > 2 || *all && (*out == "" || len(pos) > 1) {
		fmt.Fprintln(stderr, "usage: entrypoint env generate [PROFILE [ENVIRONMENT]] [--out DIR] [--all]  (--all needs --out)")
		return exitcode.Usage
	}
	for i, dst := range []*string{profile, environment} {
		if i < len(pos) {
			*dst = pos[i]
		}
	}
	tree, err := initsteps.TreeFromEnv(env)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint env generate: %v\n", err)
		return exitcode.Config
	}
	if *out == "" {
		err = initsteps.GenerateEnv(stdout, tree, *profile, *environment)
	} else {
		envs := []string{*environment}
		if *all {
			envs = nil
		}
		var paths []string
		paths, err = initsteps.WriteEnvFiles(tree, *profile, envs, *out)
		for _, p := range paths {
			fmt.Fprintf(stdout, "Generated: %s\n", p)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint env generate: %v\n", err)
		return exitcode.Config
	}
	return exitcode.OK
}

// runPFE runs a profile-manager verb with the plan inputs taken from the environment.
func runPFE(verb string, args, env []string, stdout, stderr io.Writer) int {
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitcode.Config
	}
	return pfecli.Run(verb, args, pfecli.Config{
		Inputs: initsteps.PlanInputs(st), BuiltinDir: st.ConfigDir, CustomDir: st.CustomDir, LegacyDir: st.LegacyDir,
		ConfigFile: st.ConfigFile,
		Credential: func() (*supervise.Credential, []string, error) { return initsteps.ValidateCredential(st) },
	}, stdout, stderr)
}
