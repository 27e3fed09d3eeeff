package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
	"github.com/prosody-pfe/prosody-pfe/pkg/tlscerts"
)

// configError marks a stage failure caused by configuration: the entrypoint
// exits 78 (EX_CONFIG) for it, 1 for anything else.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// state is what the init stages produce and pass along, and what the reload
// path re-derives on a change.
type state struct {
	st     *settings.Settings
	log    *zap.Logger
	stderr io.Writer // where operator-facing reports go

	// cred is who prosody runs as (nil: as the entrypoint). uid/gid own the files
	// prosody must read; -1 when the entrypoint is not root (it owns them itself).
	cred     *supervise.Credential
	uid, gid int

	tree        *pfe.Tree
	plan        *pfe.Plan
	certs       *tlscerts.Result
	secrets     map[string]string // credential name -> value; never logged
	secretsHash string            // sha256 over the secrets: tells a rotated secret
	rendered    []byte
	hash        string

	// candidate is set on a reload's re-run of the stages: nothing it makes may
	// touch what the running Prosody reads until it is accepted.
	candidate bool

	// sup is the running supervisor once prosody started (nil during the init
	// stages): commands run while it reaps must go through sup.Exec.
	sup *supervise.Supervisor

	configPath string // the file prosody runs
	credDir    string // CREDENTIALS_DIRECTORY for Prosody 13's Credential()
	certsDir   string // what the rendered `certificates` points at
}

// configStages are the stages that produce a checked config file. The order is
// the contract: settings were validated and stageDirectories ran before (the
// logger needs the settings, the notify socket the runtime directory), and a
// reload re-runs exactly these.
func configStages() []initsteps.Stage[*state] {
	return []initsteps.Stage[*state]{
		{Name: "plan", Run: stagePlan},
		{Name: "secrets", Run: stageSecrets},
		{Name: "tls", Run: stageTLS},
		{Name: "render", Run: stageRender},
		{Name: "check", Run: stageCheck},
	}
}

// planInputs maps the validated settings to the PFE engine's inputs.
func planInputs(st *settings.Settings) pfe.Inputs {
	in := pfe.Inputs{
		Profile:               st.Profile,
		Environment:           st.Environment,
		Domains:               st.Domains(),
		Admins:                st.Admins,
		Storage:               st.Storage,
		DBHost:                st.DBHost,
		DBPort:                st.DBPort,
		DBName:                st.DBName,
		DBUser:                st.DBUser,
		C2SPort:               st.C2SPort,
		S2SPort:               st.S2SPort,
		HTTPPort:              st.HTTPPort,
		HTTPSPort:             st.HTTPSPort,
		Interfaces:            st.Interfaces,
		DeploymentType:        st.DeploymentType,
		ScaleProfile:          st.ScaleProfile,
		ResourceLimits:        st.ResourceLimits,
		UploadSizeLimit:       st.HTTPUploadSizeLimit,
		FastTokenTTL:          st.FastTokenTTL,
		RequireChannelBinding: st.RequireChannelBinding,
		TLSProfile:            st.TLSProfile,
		DataDir:               st.DataDir,
		RuntimeDir:            st.RuntimeDir,
		CertsDir:              filepath.Join(st.RuntimeDir, "certs"),
		Legacy:                st.LegacyMode,
		Toggles:               st.Toggles,
		ExtraModules:          st.ExtraModules,
		PluginPaths:           pluginPaths(st),
	}
	if src := st.Source("PROSODY_ALLOW_REGISTRATION"); src != settings.SourceDefault {
		v := st.AllowRegistration
		in.AllowRegistration = &v
	}
	// LogLevel: the settings default it per environment; pass it only when the
	// operator chose it so the environment file's log_level applies otherwise.
	if st.Source("PROSODY_LOG_LEVEL") != settings.SourceDefault {
		in.LogLevel = st.LogLevel
	}
	var list []string
	for _, f := range st.Features {
		sign := "-"
		if f.Enable {
			sign = "+"
		}
		list = append(list, sign+f.Name)
	}
	in.FeatureList = strings.Join(list, ",")
	return in
}

// newState decides who prosody runs as and where the runtime files go.
func newState(st *settings.Settings, log *zap.Logger, stderr io.Writer, configName string) (*state, error) {
	s := &state{st: st, log: log, stderr: stderr, uid: -1, gid: -1}
	uidOverride, gidOverride := "", ""
	if st.UID >= 0 {
		uidOverride = strconv.Itoa(st.UID)
	}
	if st.GID >= 0 {
		gidOverride = strconv.Itoa(st.GID)
	}
	cred, err := supervise.PrivilegeDrop("prosody", uidOverride, gidOverride)
	if err != nil {
		return nil, configError{fmt.Errorf("choose the user prosody runs as (PROSODY_UID, PROSODY_GID): %w", err)}
	}
	s.cred = cred
	if cred != nil {
		s.uid, s.gid = int(cred.UID), int(cred.GID)
		if cred.Home == "" {
			cred.Home = st.DataDir
		}
	}
	s.configPath = filepath.Join(st.RuntimeDir, configName)
	s.credDir = filepath.Join(st.RuntimeDir, "credentials")
	s.certsDir = filepath.Join(st.RuntimeDir, "certs")
	return s, nil
}

func stagePlan(_ context.Context, s *state) error {
	tree, err := pfe.Load(s.st.ConfigDir, s.st.CustomDir)
	if err != nil {
		return configError{fmt.Errorf("load the config tree (PROSODY_CONFIG_DIR=%s, PROSODY_CUSTOM_DIR=%s): %w", s.st.ConfigDir, s.st.CustomDir, err)}
	}
	plan, err := tree.Plan(planInputs(s.st))
	if err != nil {
		return configError{err}
	}
	for _, w := range plan.Warnings {
		s.log.Warn("plan warning", zap.String("warning", w))
	}
	s.tree, s.plan = tree, plan
	names := make([]string, len(plan.Features))
	for i, f := range plan.Features {
		names[i] = f.Name
	}
	s.log.Info("plan", zap.String("profile", plan.Profile), zap.String("environment", plan.Environment),
		zap.Strings("domains", plan.Domains), zap.Strings("features", names))
	if s.st.MigrationMode && !s.candidate {
		report, err := migrationReport(s.st.ConfigDir, plan)
		if err != nil {
			return configError{fmt.Errorf("PROSODY_MIGRATION_MODE: %w", err)}
		}
		s.log.Info("migration report: legacy modules.d lists mapped to features", zap.String("report", report))
		fmt.Fprint(s.stderr, "entrypoint: migration report (PROSODY_MIGRATION_MODE=true)\n"+report)
	}
	return nil
}

// stageDirectories makes the data and runtime directories and gives them to
// prosody. Only the top of the data directory is chowned: a large volume is
// never walked.
func stageDirectories(_ context.Context, s *state) error {
	for _, d := range []struct {
		path, varName string
		mode          os.FileMode
	}{
		{s.st.DataDir, "PROSODY_DATA_DIR", 0o750},
		{s.st.RuntimeDir, "PROSODY_RUNTIME_DIR", 0o755},
		{s.certsDir, "PROSODY_RUNTIME_DIR", 0o750},
	} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("create %s (%s): %w; mount a writable volume there or set %s", d.path, d.varName, err, d.varName)
		}
		if s.uid >= 0 {
			if err := os.Chown(d.path, s.uid, s.gid); err != nil {
				return fmt.Errorf("give %s (%s) to uid %d: %w", d.path, d.varName, s.uid, err)
			}
		}
		if err := writable(d.path, s.cred); err != nil {
			return fmt.Errorf("%s (%s): %w", d.path, d.varName, err)
		}
	}
	return nil
}

// writable checks that the user prosody runs as can write dir.
func writable(dir string, cred *supervise.Credential) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if cred == nil {
		f, err := os.CreateTemp(dir, ".write-test-*")
		if err != nil {
			return fmt.Errorf("not writable by uid %d: %w", os.Getuid(), err)
		}
		name := f.Name()
		f.Close()
		return os.Remove(name)
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	return nil
}

// stageSecrets gathers the secrets Prosody reads with Credential(): the ones
// the operator gave (database password) and the ones generated once into the
// data volume. They are written one file each, readable by prosody only.
func stageSecrets(_ context.Context, s *state) error {
	want := map[string]bool{}
	for _, name := range credentialNames(s.plan) {
		want[name] = true
	}
	secrets := map[string]string{}
	var generate []string
	for name := range want {
		switch name {
		case "db_password":
			if !s.st.DBPassword.IsSet() {
				return configError{errors.New("the configuration reads Credential(\"db_password\") but PROSODY_DB_PASSWORD (or PROSODY_DB_PASSWORD_FILE) is not set")}
			}
			secrets[name] = s.st.DBPassword.Reveal()
		default:
			generate = append(generate, name)
		}
	}
	if len(generate) > 0 {
		gen, err := settings.EnsureGenerated(s.st.DataDir, generate...)
		if err != nil {
			return fmt.Errorf("generate internal secrets in %s: %w", s.st.DataDir, err)
		}
		for k, v := range gen {
			secrets[k] = v
		}
		// They live in the data volume, which belongs to prosody: a backup run as
		// prosody must be able to read them.
		if s.uid >= 0 {
			dir := filepath.Join(s.st.DataDir, "secrets")
			paths := []string{dir}
			for _, name := range generate {
				paths = append(paths, filepath.Join(dir, name))
			}
			for _, p := range paths {
				if err := os.Chown(p, s.uid, s.gid); err != nil {
					return fmt.Errorf("give %s to uid %d: %w", p, s.uid, err)
				}
			}
		}
	}
	s.secrets = secrets
	sum := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		fmt.Fprintf(sum, "%s\x00%s\x00", name, secrets[name])
	}
	s.secretsHash = hex.EncodeToString(sum.Sum(nil))
	if s.candidate {
		// A reload's candidate is checked with its own copy; the running
		// server's credentials change only once the candidate is accepted.
		s.credDir = filepath.Join(s.st.RuntimeDir, "next", "credentials")
	}
	return writeCredentials(s, s.credDir)
}

// writeCredentials writes one file per secret into dir (0700, files 0400),
// owned by the user prosody runs as: what Prosody 13's Credential() reads.
func writeCredentials(s *state, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if s.uid >= 0 {
		if err := os.Chown(dir, s.uid, s.gid); err != nil {
			return fmt.Errorf("give %s to uid %d: %w", dir, s.uid, err)
		}
	}
	for name, val := range s.secrets {
		if _, err := luacfg.WriteAtomic(filepath.Join(dir, name), []byte(val), 0o400, s.uid, s.gid); err != nil {
			return fmt.Errorf("write credential %q into %s: %w", name, dir, err)
		}
	}
	return nil
}

// credentialNames lists the Credential("name") references of a plan.
func credentialNames(p *pfe.Plan) []string {
	seen := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case pfe.Credential:
			seen[x.Name] = true
		case *pfe.Credential:
			seen[x.Name] = true
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	sections := []pfe.SectionPlan{p.Global}
	for _, h := range p.Hosts {
		sections = append(sections, h.SectionPlan)
	}
	for _, c := range p.Components {
		sections = append(sections, c.SectionPlan)
	}
	for _, sec := range sections {
		for _, o := range sec.Options {
			walk(o.Value)
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	return out
}

// planHosts lists every host the plan serves: VirtualHosts, then Components.
func planHosts(p *pfe.Plan) []string {
	var hosts []string
	for _, h := range p.Hosts {
		hosts = append(hosts, h.Domain)
	}
	for _, c := range p.Components {
		hosts = append(hosts, c.Address)
	}
	return hosts
}

// stageTLS finds, checks or generates a certificate for every host and puts
// each pair, readable by prosody only, where the rendered `certificates`
// option points.
func stageTLS(_ context.Context, s *state) error {
	allowSelfSigned := s.st.TLSAllowSelfSigned || s.plan.TLS.AllowSelfSigned
	stageRoot := s.st.RuntimeDir
	if s.candidate {
		// A reload's candidate stages keys beside the live ones; they are
		// installed only once the whole candidate is accepted.
		stageRoot = filepath.Join(s.st.RuntimeDir, "next")
	}
	res, err := tlscerts.Prepare(tlscerts.Options{
		Dir:             s.st.CertsDir,
		Hosts:           planHosts(s.plan),
		RuntimeDir:      stageRoot,
		DataDir:         s.st.DataDir,
		UID:             s.uid,
		GID:             s.gid,
		Generate:        s.plan.TLS.GenerateSelfSigned,
		AllowSelfSigned: allowSelfSigned,
		Logger:          s.log.Named("tls"),
	})
	if err != nil {
		return configError{err}
	}
	for _, h := range res.Hosts {
		for _, w := range h.Warnings {
			s.log.Warn("certificate", zap.String("host", h.Host), zap.String("warning", w))
		}
	}
	s.certs = res
	if s.candidate {
		return nil
	}
	return installCerts(s)
}

// installCerts puts every host's pair where the rendered `certificates` option
// points.
func installCerts(s *state) error {
	for _, h := range s.certs.Hosts {
		if err := installCert(h, s.certsDir, s.uid, s.gid); err != nil {
			return err
		}
	}
	return nil
}

// installCert copies a host's pair to <dir>/<host>.crt and .key (Prosody's own
// lookup layout), unless it is already there. Copies keep the key private.
func installCert(h tlscerts.HostCert, dir string, uid, gid int) error {
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{
		{h.CertFile, filepath.Join(dir, h.Host+".crt"), 0o644},
		{h.KeyFile, filepath.Join(dir, h.Host+".key"), 0o600},
	} {
		if filepath.Clean(f.src) == filepath.Clean(f.dst) {
			continue
		}
		data, err := os.ReadFile(f.src)
		if err != nil {
			return fmt.Errorf("read certificate file for %s: %w", h.Host, err)
		}
		if _, err := luacfg.WriteAtomic(f.dst, data, f.mode, uid, gid); err != nil {
			return fmt.Errorf("install certificate file for %s: %w", h.Host, err)
		}
	}
	return nil
}

func stageRender(_ context.Context, s *state) error {
	out, err := luacfg.Render(s.plan)
	if err != nil {
		return configError{fmt.Errorf("render %s: %w", s.configPath, err)}
	}
	changed, err := luacfg.WriteAtomic(s.configPath, out, 0o600, s.uid, s.gid)
	if err != nil {
		return fmt.Errorf("write %s (PROSODY_RUNTIME_DIR): %w", s.configPath, err)
	}
	sum := sha256.Sum256(out)
	s.rendered, s.hash = out, hex.EncodeToString(sum[:])
	s.log.Info("config rendered", zap.String("path", s.configPath), zap.Bool("changed", changed),
		zap.String("sha256", s.hash[:16]))
	return nil
}

// pluginPaths is the operator's PROSODY_PLUGIN_DIR as Prosody's plugin_paths.
func pluginPaths(st *settings.Settings) []string {
	if st.PluginDir == "" {
		return nil
	}
	return []string{st.PluginDir}
}

// moduleDirs are where the rendered config makes Prosody look for modules:
// Debian's directory and the plan's plugin_paths (PROSODY_PLUGIN_DIR).
func moduleDirs(p *pfe.Plan) []string {
	dirs := []string{pfe.DebianModuleDir}
	for _, o := range p.Global.Options {
		if list, ok := o.Value.([]any); ok && o.Name == "plugin_paths" {
			for _, d := range list {
				if s, ok := d.(string); ok {
					dirs = append(dirs, s)
				}
			}
		}
	}
	return dirs
}

func stageCheck(ctx context.Context, s *state) error {
	return checkConfig(ctx, s, s.plan, s.configPath)
}

// checkConfig checks a rendered file: every module present, then luac and
// prosodyctl check config. Warnings are logged; errors reject the file.
func checkConfig(ctx context.Context, s *state, plan *pfe.Plan, path string) error {
	if missing := pfe.MissingModules(plan, moduleDirs(plan)); len(missing) > 0 {
		var b strings.Builder
		for _, m := range missing {
			fmt.Fprintf(&b, "\n  mod_%s (wanted by %s): %s", m.Module, orCore(m.Feature), m.Hint)
		}
		return configError{fmt.Errorf("%d module(s) not installed:%s", len(missing), b.String())}
	}
	// The checkers get no PROSODY_* variable (secrets among them), only where
	// Credential() finds the secrets.
	opt := luacfg.CheckOptions{Env: append(withoutProsodyVars(os.Environ()), "CREDENTIALS_DIRECTORY="+s.credDir)}
	if s.sup != nil {
		// The reaper runs: checkers must go through it or lose their exit status.
		opt.Run = func(ctx context.Context, name string, args, env []string) (string, int, error) {
			out, code, err := s.sup.Exec(ctx, supervise.AuxCommand{Path: name, Args: args, Env: env})
			return string(out), code, err
		}
	}
	warnings, err := luacfg.Check(ctx, path, opt)
	for _, w := range warnings {
		s.log.Warn("prosodyctl check config", zap.String("warning", w))
	}
	if err != nil {
		return configError{err}
	}
	return nil
}

func orCore(feature string) string {
	if feature == "" {
		return "the core layers"
	}
	return "feature " + feature
}

// withoutProsodyVars drops the PROSODY_* variables from env.
func withoutProsodyVars(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "PROSODY_") })
}

// childEnv is prosody's environment: the entrypoint's own without the PROSODY_*
// variables (secrets among them), plus what Prosody 13 reads.
func childEnv(env []string, s *state, notifySocket string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "PROSODY_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") ||
			strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "CREDENTIALS_DIRECTORY="+s.credDir)
	if notifySocket != "" {
		out = append(out, "NOTIFY_SOCKET="+notifySocket)
	}
	if s.cred == nil {
		out = append(out, "HOME="+s.st.DataDir)
	}
	return out
}

// runStages runs stages and prints a failure the way an operator needs it.
func runStages(ctx context.Context, stages []initsteps.Stage[*state], s *state, obs initsteps.Observer, stderr io.Writer) (int, bool) {
	start := time.Now()
	_, err := initsteps.Run(ctx, stages, s, s.log, obs)
	if err == nil {
		s.log.Info("init stages done", zap.Duration("duration", time.Since(start)))
		return 0, true
	}
	if ctx.Err() != nil {
		return 0, false // stopped: the stage's error is the stop, not a failure to report
	}
	fmt.Fprintf(stderr, "entrypoint: %v\n", err)
	var ce configError
	if errors.As(err, &ce) {
		return exitConfig, false
	}
	return 1, false
}
