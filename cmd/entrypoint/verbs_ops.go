package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/backup"
	"github.com/prosody-pfe/prosody-pfe/pkg/hooks"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/migrate"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// secretVars are the variables whose values init hooks never see; their
// VAR_FILE forms (paths) are passed.
func secretVars() []string { return settings.SecretVars() }

// prosodyStages are the Prosody pipeline's stages: the config stages with
// "migrate" (storage migration) before "render", then one "hook/NAME" stage
// per init hook of PROSODY_HOOKS_DIR, in lexical order, after "check".
// A failing hook or migration stops start-up with exit 78.
func prosodyStages(s *state, env []string) []initsteps.Stage[*state] {
	var out []initsteps.Stage[*state]
	for _, st := range configStages() {
		if st.Name == "render" {
			out = append(out, initsteps.Stage[*state]{Name: "migrate", Run: stageMigrate(env)})
		}
		out = append(out, st)
	}
	list, skipped, err := hooks.List(s.st.HooksDir)
	if err != nil {
		return append(out, initsteps.Stage[*state]{Name: "hooks", Run: func(context.Context, *state) error {
			return configError{fmt.Errorf("%w (PROSODY_HOOKS_DIR)", err)}
		}})
	}
	for _, sk := range skipped {
		s.log.Info("init hook skipped", zap.String("hook", sk.Name), zap.String("reason", sk.Reason))
	}
	hookEnv := hooks.Env(env, secretVars())
	for _, h := range list {
		out = append(out, initsteps.Stage[*state]{Name: "hook/" + h.Name, Run: func(ctx context.Context, s *state) error {
			s.log.Info("init hook", zap.String("hook", h.Name), zap.Bool("sh", h.Shell))
			if err := h.Run(ctx, hooks.RunOptions{Env: hookEnv, Stdout: os.Stdout, Stderr: os.Stderr}); err != nil {
				return configError{err}
			}
			return nil
		}})
	}
	return out
}

// stageMigrate moves the data to PROSODY_STORAGE with prosody-migrator when
// the volume holds data of another storage.
func stageMigrate(env []string) func(context.Context, *state) error {
	return func(ctx context.Context, s *state) error {
		var hosts []migrate.Host
		for _, h := range s.plan.Hosts {
			hosts = append(hosts, migrate.Host{Name: h.Domain, Stores: migrate.HostStores()})
		}
		for _, c := range s.plan.Components {
			switch c.Type {
			case "muc":
				hosts = append(hosts, migrate.Host{Name: c.Address, Stores: migrate.MUCStores()})
			case "http_file_share":
				hosts = append(hosts, migrate.Host{Name: c.Address, Stores: migrate.UploadStores()})
			}
		}
		_, err := migrate.Ensure(ctx, migrate.Config{
			DataDir: s.st.DataDir,
			To:      s.st.Storage,
			Hosts:   hosts,
			Postgres: migrate.PostgresDB{Host: s.st.DBHost, Port: s.st.DBPort, Name: s.st.DBName, User: s.st.DBUser,
				Password: s.st.DBPassword.Reveal()},
			WorkDir: s.st.RuntimeDir,
			UID:     s.uid,
			GID:     s.gid,
			Env:     childEnv(env, s, ""),
			Logger:  s.log.Named("migrate"),
		})
		if err != nil {
			return configError{err}
		}
		return nil
	}
}

// runBackup is `entrypoint backup [--out FILE]`: an archive of the data
// directory to FILE (written atomically) or to stdout.
func runBackup(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "-", "archive to write (.tar.gz); - is stdout")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: entrypoint backup [--out FILE]")
		return exitUsage
	}
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitConfig
	}
	log := newLogger(st.LogFormat, "info", stderr)
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	cfg := backup.Config{DataDir: st.DataDir, Storage: st.Storage, Profile: st.Profile, Hosts: st.Domains(),
		Version: buildVersion(), Logger: log,
		Postgres: backup.Postgres{Host: st.DBHost, Port: st.DBPort, Name: st.DBName, User: st.DBUser, Password: st.DBPassword.Reveal()}}
	if *out == "-" {
		m, err := backup.Create(context.Background(), cfg, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "entrypoint: %v\n", err)
			return 1
		}
		log.Info("backup written", zap.String("to", "stdout"), zap.Int("files", len(m.Files)), zap.String("database", m.Database))
		return 0
	}
	dir := filepath.Dir(*out)
	tmp, err := os.CreateTemp(dir, ".backup-*.tmp")
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: backup: create %s: %v\n", *out, err)
		return 1
	}
	defer os.Remove(tmp.Name())
	cfg.TempDir = dir // SQLite copies land on the backup volume, not in a small /tmp
	cfg.Exclude = []string{tmp.Name(), *out}
	m, err := backup.Create(context.Background(), cfg, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: backup to %s: %v\n", *out, err)
		return 1
	}
	log.Info("backup written", zap.String("to", *out), zap.Int("files", len(m.Files)), zap.String("database", m.Database))
	return 0
}

// runRestore is `entrypoint restore FILE`: verify, then restore into the
// stopped data directory.
func runRestore(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verifyOnly := fs.Bool("verify", false, "only verify the archive's checksums")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: entrypoint restore [--verify] FILE")
		return exitUsage
	}
	file := fs.Arg(0)
	if *verifyOnly {
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintf(stderr, "entrypoint: restore: %v\n", err)
			return 1
		}
		defer f.Close()
		m, err := backup.Verify(bufio.NewReader(f))
		if err != nil {
			fmt.Fprintf(stderr, "entrypoint: verify %s: %v\n", file, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok, %d files, created %s, storage %s\n", file, len(m.Files), m.Created.Format(time.RFC3339), m.Storage)
		return 0
	}
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitConfig
	}
	log := newLogger(st.LogFormat, "info", stderr)
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	s, err := newState(st, log, stderr, "restore.cfg.lua")
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitConfig
	}
	if err := stagePlan(context.Background(), s); err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return exitConfig
	}
	// A listening c2s port on this machine also means a server runs here
	// (the admin socket is checked by the restore itself).
	if c, err := net.DialTimeout("tcp", probeAddr(st), time.Second); err == nil {
		c.Close()
		fmt.Fprintf(stderr, "entrypoint: restore: something listens on %s (PROSODY_C2S_PORT): stop the server first, then restore\n", probeAddr(st))
		return 1
	}
	res, err := backup.Restore(context.Background(), backup.RestoreConfig{DataDir: st.DataDir, AdminSocket: adminSocket(s),
		UID: s.uid, GID: s.gid, Logger: log}, file)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %d files from %s (made %s, storage %s) into %s\n", res.Files, file,
		res.Manifest.Created.Format(time.RFC3339), res.Manifest.Storage, st.DataDir)
	if res.Aside != "" {
		fmt.Fprintf(stdout, "the previous contents are in %s\n", res.Aside)
	}
	if res.HasPostgresDump {
		fmt.Fprintf(stdout, "the archive holds postgres.sql: load it with psql (docs/operations.md)\n")
	}
	if res.Manifest.Storage != st.Storage {
		fmt.Fprintf(stdout, "note: the backup was made with PROSODY_STORAGE=%s, this environment says %s: the next start migrates it\n",
			res.Manifest.Storage, st.Storage)
	}
	return 0
}

// installedModule is one row of `modules list`.
type installedModule struct {
	Name     string   `json:"name"`
	Source   string   `json:"source"` // core, community (Debian prosody-modules) or plugin-dir
	Path     string   `json:"path"`
	Features []string `json:"features,omitempty"`
}

// runModules is `entrypoint modules list [--json]`.
func runModules(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("modules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if len(args) == 0 || args[0] != "list" || fs.Parse(args[1:]) != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: entrypoint modules list [--json]")
		return exitUsage
	}
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitConfig
	}
	tree, err := pfe.Load(st.ConfigDir, st.CustomDir)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: load the config tree (PROSODY_CONFIG_DIR=%s): %v\n", st.ConfigDir, err)
		return exitConfig
	}
	users := map[string][]string{}
	for _, name := range tree.Features() {
		for _, m := range layerModules(tree.Feature(name).Layer, tree.Feature(name).Parts) {
			if !contains(users[m], name) {
				users[m] = append(users[m], name)
			}
		}
	}
	community := debianCommunityModules()
	var mods []installedModule
	seen := map[string]bool{}
	dirs := []struct{ dir, source string }{{pfe.DebianModuleDir, "core"}}
	if st.PluginDir != "" {
		// Prosody searches plugin_paths before its own directory.
		dirs = append([]struct{ dir, source string }{{st.PluginDir, "plugin-dir"}}, dirs...)
	}
	for _, d := range dirs {
		found, err := modulesIn(d.dir)
		if err != nil {
			fmt.Fprintf(stderr, "entrypoint: modules: %v\n", err)
			return 1
		}
		for name, path := range found {
			if seen[name] {
				continue
			}
			seen[name] = true
			src := d.source
			if src == "core" && community[name] {
				src = "community"
			}
			mods = append(mods, installedModule{Name: name, Source: src, Path: path, Features: users[name]})
		}
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(mods); err != nil {
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tSOURCE\tFEATURES")
	for _, m := range mods {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, m.Source, strings.Join(m.Features, ","))
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// layerModules lists the modules a feature's layers (with when blocks and
// parts) add: global, host and component modules, and component types.
func layerModules(l pfe.Layer, parts map[string]pfe.Part) []string {
	var out []string
	for _, sec := range []*pfe.Section{l.Global, l.Host} {
		if sec != nil {
			out = append(out, sec.Modules...)
		}
	}
	for _, c := range l.Components {
		if c.Type != "" {
			out = append(out, c.Type)
		}
		out = append(out, c.Modules...)
	}
	for _, w := range l.When {
		out = append(out, layerModules(w.Layer, nil)...)
	}
	for _, p := range parts {
		out = append(out, layerModules(p.Layer, nil)...)
	}
	return out
}

// modulesIn maps module names to files in dir, with Prosody's loader layouts
// (mod_x.lua, mod_x/mod_x.lua). A missing dir has none.
func modulesIn(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read module directory %s: %w", dir, err)
	}
	out := map[string]string{}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "mod_") {
			continue
		}
		switch {
		case e.IsDir():
			if _, err := os.Stat(filepath.Join(dir, n, n+".lua")); err == nil {
				out[strings.TrimPrefix(n, "mod_")] = filepath.Join(dir, n)
			}
		case strings.HasSuffix(n, ".lua"):
			out[strings.TrimSuffix(strings.TrimPrefix(n, "mod_"), ".lua")] = filepath.Join(dir, n)
		}
	}
	return out, nil
}

// debianCommunityModules names the modules the Debian prosody-modules package
// installed into Prosody's own module directory (from dpkg's file list).
func debianCommunityModules() map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile("/var/lib/dpkg/info/prosody-modules.list")
	if err != nil {
		return out // not Debian, or the package is not installed
	}
	prefix := pfe.DebianModuleDir + "/"
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		first, _, _ := strings.Cut(rest, "/")
		if name, ok := strings.CutPrefix(first, "mod_"); ok {
			out[strings.TrimSuffix(name, ".lua")] = true
		}
	}
	return out
}
