package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/backup"
	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// runBackup is `entrypoint backup [--out FILE]`: an archive of the data
// directory to FILE (written atomically) or to stdout.
func runBackup(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "-", "archive to write (.tar.gz); - is stdout")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: entrypoint backup [--out FILE]")
		return exitcode.Usage
	}
	st, log, ok := begin(env, stderr, "info")
	if !ok {
		return exitcode.Config
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	m, err := backup.CreateFile(context.Background(), initsteps.BackupConfig(st, buildVersion(), log), *out, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: backup to %s: %v\n", *out, err)
		return exitcode.Failed
	}
	log.Info("backup written", zap.String("to", *out), zap.Int("files", len(m.Files)), zap.String("database", m.Database))
	return exitcode.OK
}

// runRestore is `entrypoint restore FILE`: verify, then restore into the
// stopped data directory.
func runRestore(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verifyOnly := fs.Bool("verify", false, "only verify the archive's checksums")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: entrypoint restore [--verify] FILE")
		return exitcode.Usage
	}
	file := fs.Arg(0)
	if *verifyOnly {
		m, err := backup.VerifyFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "entrypoint: verify %s: %v\n", file, err)
			return exitcode.Failed
		}
		fmt.Fprintf(stdout, "%s: ok, %d files, created %s, storage %s\n", file, len(m.Files), m.Created.Format(time.RFC3339), m.Storage)
		return exitcode.OK
	}
	res, st, err := initsteps.Restore(context.Background(), env, stderr, file)
	if err != nil {
		return stageFailure(stderr, err)
	}
	res.WriteText(stdout, file, st.DataDir, st.Storage)
	return exitcode.OK
}

// runModules is `entrypoint modules list [--json]`.
func runModules(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("modules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if len(args) == 0 || args[0] != "list" || fs.Parse(args[1:]) != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: entrypoint modules list [--json]")
		return exitcode.Usage
	}
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitcode.Config
	}
	mods, err := initsteps.Modules(st)
	if err != nil {
		return stageFailure(stderr, err)
	}
	if *asJSON {
		err = pfe.WriteModulesJSON(stdout, mods)
	} else {
		err = pfe.WriteModules(stdout, mods)
	}
	if err != nil {
		return exitcode.Failed
	}
	return exitcode.OK
}
