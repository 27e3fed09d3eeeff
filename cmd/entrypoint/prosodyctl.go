package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// runProsodyctl runs the config stages, then prosodyctl as a child against the
// same rendered config, so `docker run IMAGE prosodyctl check config` checks
// what the server would run. It renders to its own file: a `docker exec` beside
// a running server never rewrites the file that server runs.
func (a *app) runProsodyctl(args, env []string, stderr io.Writer) int {
	if a.signals == nil {
		fmt.Fprintln(stderr, "entrypoint: internal error: signals not registered")
		return exitSoftware
	}
	s := initsteps.New(initsteps.Config{Env: env, Stderr: stderr, ConfigName: "prosodyctl.cfg.lua",
		Logger: initsteps.RootLogger(stderr, "warn")})
	_, err := initsteps.Run(context.Background(), initsteps.Preamble(), s, nil, nil)
	if err == nil {
		_, err = initsteps.Run(context.Background(), initsteps.ConfigStages(s.Settings), s, nil, nil)
	}
	defer s.Log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	if err != nil {
		return stageFailure(stderr, err)
	}
	// As prosody from the start: run as root, prosodyctl would load the
	// config (and any Lua in the tree) before switching to the prosody user.
	sup, err := supervise.New(supervise.Config{
		Path:        "prosodyctl",
		Args:        append([]string{"--config", s.Paths.Config}, args...),
		Env:         s.ChildEnv(""),
		Cred:        s.Cred,
		StopTimeout: s.Settings.StopTimeout,
		Signals:     a.signals,
		Logger:      s.Log.Named("supervise"),
		Stderr:      stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitSoftware
	}
	return sup.Run(context.Background())
}

// liveVars are the settings the prosodyctl wrapper needs to find the running
// server's config; a problem with another variable does not stop it.
var liveVars = map[string]bool{"PROSODY_RUNTIME_DIR": true, "PROSODY_DATA_DIR": true, "PROSODY_UID": true, "PROSODY_GID": true}

// runLiveProsodyctl is prosodyctl as `docker exec CONTAINER prosodyctl ARGS`
// runs it: the image links /usr/local/bin/prosodyctl, first in PATH, to the
// entrypoint. It replaces itself with the real prosodyctl against the config
// the running server reads (the live file in PROSODY_RUNTIME_DIR, with its
// credentials directory), as the user prosody runs as, keeping the terminal
// for `prosodyctl shell`. Before any server rendered a config there, it is
// `entrypoint prosodyctl ARGS`. With --config given, the caller chose the
// file (the config checks do): the arguments pass through unchanged.
func (a *app) runLiveProsodyctl(args, env []string, stderr io.Writer) int {
	if slices.ContainsFunc(args, func(s string) bool { return s == "--config" || strings.HasPrefix(s, "--config=") }) {
		return execFailure(stderr, supervise.ExecReplace("prosodyctl", args, env, nil))
	}
	st, _, _, err := settings.LoadLenient(env, func(name string) bool { return liveVars[name] })
	if err != nil {
		printSettingsError(stderr, err)
		return exitConfig
	}
	live := initsteps.LivePaths(st.RuntimeDir, "prosody.cfg.lua")
	if fi, err := os.Lstat(live.Config); err != nil || !fi.Mode().IsRegular() {
		fmt.Fprintf(stderr, "entrypoint: no running server's config at %s; rendering one from the environment\n", live.Config)
		return a.runProsodyctl(args, env, stderr)
	}
	cred, err := initsteps.ChildCredential(st)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitConfig
	}
	s := &initsteps.State{Env: env, Settings: st, Paths: live, Cred: cred}
	childEnv := s.ChildEnv("")
	if cred != nil {
		childEnv = append(childEnv, "HOME="+cred.Home)
	}
	return execFailure(stderr, supervise.ExecReplace("prosodyctl", append([]string{"--config", live.Config}, args...), childEnv, cred))
}

// execFailure reports a program that could not replace the entrypoint: 127
// when it is not found, 126 otherwise (a shell's codes).
func execFailure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "entrypoint: %v\n", err)
	if errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "not found") {
		return supervise.CodeNotFound
	}
	return supervise.CodeNotExecutable
}
