package initsteps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/checkcache"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/acme"
	"github.com/prosody-pfe/prosody-pfe/pkg/hooks"
	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/migrate"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/tlscerts"
)

// The stages, each a value. The lists below are the only places that order
// them; a stage assumes the ones before it in every list it is in have run.
var (
	// Directories makes the data and runtime directories and gives them to prosody.
	Directories = Stage[*State]{Name: "directories", Run: stageDirectories}
	// Plan loads the tree and resolves the plan.
	Plan = Stage[*State]{Name: "plan", Run: stagePlan}
	// PlanAndReport is Plan, then the legacy migration report when
	// PROSODY_MIGRATION_MODE asks for it (at start-up only: a reload does not
	// print it again).
	PlanAndReport = Stage[*State]{Name: "plan", Run: stagePlanAndReport}
	// Secrets writes the credentials Prosody reads with Credential().
	Secrets = Stage[*State]{Name: "secrets", Run: stageSecrets}
	// TLS finds, checks or generates a certificate for every host.
	TLS = Stage[*State]{Name: "tls", Run: stageTLS}
	// TLSAndInstall is TLS, then installs each pair where the rendered
	// `certificates` option points (a candidate's pairs are installed only
	// once it is accepted).
	TLSAndInstall = Stage[*State]{Name: "tls", Run: stageTLSAndInstall}
	// TLSWithACME is TLSAndInstall for the server's start: with ACME on
	// (PROSODY_ACME, PROSODY_ACME_EMAIL), it first gets or reuses the ACME
	// certificate of the hosts no mounted certificate covers, and keeps the
	// manager in State.ACME for the renewal. Only the start orders
	// certificates: a reload's candidate and a prosodyctl run read the stored one.
	TLSWithACME = Stage[*State]{Name: "tls", Run: stageTLSWithACME}
	// Migrate moves the data to PROSODY_STORAGE when the volume holds another's.
	Migrate = Stage[*State]{Name: "migrate", Run: stageMigrate}
	// Render renders the plan and writes it to Paths.Config.
	Render = Stage[*State]{Name: "render", Run: stageRender}
	// Check checks the rendered file: modules present, luac, prosodyctl check config.
	Check = Stage[*State]{Name: "check", Run: stageCheck}
)

// Preamble runs before the health server exists: that needs the settings, and
// the runtime directory for the notify socket. Its results are reported once
// the server does.
func Preamble() []Stage[*State] { return []Stage[*State]{ValidateEnv, Directories} }

// ConfigStages are the stages that produce a checked, installed config file for a
// command run against it (entrypoint prosodyctl), from the source st chooses.
func ConfigStages(st *settings.Settings) []Stage[*State] {
	return SourceFor(st).configStages(TLSAndInstall, false)
}

// Candidate are a reload's stages: the same checks, written to the
// candidate's paths, nothing installed.
func Candidate(st *settings.Settings) []Stage[*State] {
	return SourceFor(st).configStages(TLS, false)
}

// Startup are the Prosody pipeline's stages after the preamble, in order:
// the config stages (from the source the settings choose) with the storage
// migration before render, then one hook/NAME stage per init hook of
// PROSODY_HOOKS_DIR in lexical order, then Listeners, right before Prosody
// starts. A failing hook or migration, or a port in use, stops start-up with
// exit 78.
func Startup(s *State) []Stage[*State] {
	out := SourceFor(s.Settings).configStages(TLSWithACME, true)
	list, skipped, err := hooks.List(s.Settings.HooksDir)
	if err != nil {
		return append(out, Stage[*State]{Name: "hooks", Run: func(context.Context, *State) error {
			return configErr(fmt.Errorf("%w (PROSODY_HOOKS_DIR)", err))
		}}, Listeners)
	}
	for _, sk := range skipped {
		s.Log.Info("init hook skipped", zap.String("hook", sk.Name), zap.String("reason", sk.Reason))
	}
	hookEnv := hooks.Env(s.Env, settings.SecretVars())
	for _, h := range list {
		out = append(out, Stage[*State]{Name: "hook/" + h.Name, Run: func(ctx context.Context, s *State) error {
			s.Log.Info("init hook", zap.String("hook", h.Name), zap.Bool("sh", h.Shell))
			if err := h.Run(ctx, hooks.RunOptions{Env: hookEnv, Stdout: os.Stdout, Stderr: os.Stderr}); err != nil {
				return configErr(err)
			}
			return nil
		}})
	}
	return append(out, Listeners)
}

// stageDirectories makes the data directory and gives it to prosody, and
// the runtime directory, which stays root's (0755): prosody reads the
// rendered config there but can neither change it nor put anything in its
// place. Its certs directory is prosody's. Only the top of the data
// directory is chowned: a large volume is never walked. The owner is set on
// the directory's descriptor: a link planted there is not followed.
func stageDirectories(_ context.Context, s *State) error {
	if err := s.adoptData(); err != nil {
		return err
	}
	for _, d := range []struct {
		path, varName string
		mode          os.FileMode
		uid, gid      int
	}{
		{s.Settings.DataDir, "PROSODY_DATA_DIR", 0o750, s.UID, s.GID},
		{s.Settings.RuntimeDir, "PROSODY_RUNTIME_DIR", 0o755, s.rootUID(), s.rootUID()},
		{s.Paths.Certs, "PROSODY_RUNTIME_DIR", 0o750, s.UID, s.GID},
	} {
		if err := atomicfile.MkdirOwned(d.path, d.mode, d.uid, d.gid); err != nil {
			return fmt.Errorf("%s: %w; mount a writable volume there or set %s", d.varName, err, d.varName)
		}
		if err := s.writable(d.path); err != nil {
			return fmt.Errorf("%s (%s): %w", d.path, d.varName, err)
		}
	}
	return nil
}

// adoptData gives prosody a data directory whose top belongs to another
// non-root uid — the prosody user of another image, such as the official
// one — with every entry of that uid under it (atomicfile.Adopt: no link
// followed), once: afterwards the top is prosody's and nothing is walked
// again. Only as root, and unless PROSODY_DATA_ADOPT=false.
func (s *State) adoptData() error {
	st := s.Settings
	if s.Cred == nil || !st.DataAdopt {
		return nil
	}
	uid, _, err := atomicfile.Owner(st.DataDir)
	if err != nil || uid == 0 || uid == s.UID {
		return nil // missing (made below), root's, or already prosody's
	}
	n, err := atomicfile.Adopt(st.DataDir, uid, s.UID, s.GID)
	if err != nil {
		return fmt.Errorf("PROSODY_DATA_DIR belongs to uid %d, not prosody (uid %d); giving it to prosody failed after %d entries: %w; fix the owner (chown -R %d:%d) or set PROSODY_DATA_ADOPT=false and PROSODY_UID=%d to run Prosody as its owner",
			uid, s.UID, n, err, s.UID, s.GID, uid)
	}
	s.Log.Warn("data directory adopted: it belonged to another uid (another image's prosody user); it and that uid's files in it now belong to prosody (PROSODY_DATA_ADOPT=false keeps owners)",
		zap.String("path", st.DataDir), zap.Int("from_uid", uid), zap.Int("to_uid", s.UID), zap.Int("to_gid", s.GID), zap.Int("entries", n))
	return nil
}

// rootUID is the owner of what prosody may read but not change: root (0)
// when the entrypoint drops privileges, else -1 (the entrypoint's own, the
// same user as prosody's: nothing to keep apart).
func (s *State) rootUID() int {
	if s.Cred == nil {
		return -1
	}
	return 0
}

// WriteConfig writes a rendered config file: owned by root and readable by
// prosody's group (0640), so that prosody reads it and cannot change it.
// changed says whether the bytes on disk changed.
func (s *State) WriteConfig(path string, data []byte) (changed bool, err error) {
	return atomicfile.Write(path, data, 0o640, s.rootUID(), s.GID)
}

// writable checks that the user prosody runs as can write dir.
func (s *State) writable(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if s.Cred == nil {
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

// stagePlan checks who can change the config trees (CheckTrees) while it
// loads and plans them: the walk and the load read the same files, and the
// plan stage is on the way to Prosody's start. A tree the check refuses
// fails the stage whatever the load found; the loaded tree is then dropped
// (loading runs no code: it decodes regular files without following links).
func stagePlan(_ context.Context, s *State) error {
	st := s.Settings
	var warnings []string
	var trustErr error
	var wg sync.WaitGroup
	wg.Go(func() { warnings, trustErr = CheckTrees(st) })
	tree, plan, err := servedTree(st)
	wg.Wait()
	if trustErr != nil {
		return trustErr
	}
	if !s.treesWarned {
		for _, w := range warnings {
			s.Log.Warn("config tree not protected", zap.String("problem", w))
		}
		s.treesWarned = true // once per server, not at every reload
	}
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		s.Log.Warn("plan warning", zap.String("warning", w))
	}
	s.Tree, s.Plan = tree, plan
	s.Log.Info("plan", zap.String("profile", plan.Profile), zap.String("environment", plan.Environment),
		zap.Strings("domains", plan.Domains), zap.Strings("features", plan.FeatureNames()))
	return nil
}

func stagePlanAndReport(ctx context.Context, s *State) error {
	if err := stagePlan(ctx, s); err != nil {
		return err
	}
	if !s.Settings.MigrationMode {
		return nil
	}
	report, err := pfe.LegacyReport(s.Settings.ConfigDir, s.Settings.LegacyDir, s.Plan)
	if err != nil {
		return configErr(fmt.Errorf("PROSODY_MIGRATION_MODE: %w", err))
	}
	s.Log.Info("migration report: legacy modules.d lists mapped to features", zap.String("report", report))
	fmt.Fprint(s.Stderr, "entrypoint: migration report (PROSODY_MIGRATION_MODE=true)\n"+report)
	return nil
}

// stageSecrets gathers the secrets Prosody reads with Credential(): the ones
// the operator gave (database password) and the ones generated once into the
// data volume. They are written one file each, readable by prosody only.
func stageSecrets(_ context.Context, s *State) error {
	secrets := map[string]string{}
	var generate []string
	for _, name := range pfe.CredentialNames(s.Plan) {
		switch name {
		case "db_password":
			if !s.Settings.DBPassword.IsSet() {
				return configErr(errors.New("the configuration reads Credential(\"db_password\") but PROSODY_DB_PASSWORD (or PROSODY_DB_PASSWORD_FILE) is not set"))
			}
			secrets[name] = s.Settings.DBPassword.Reveal()
		default:
			generate = append(generate, name)
		}
	}
	if len(generate) > 0 {
		// They live in the data volume, which belongs to prosody: a backup run as
		// prosody must be able to read them. The directory is made (or checked)
		// first, so a link prosody planted in its place is refused, not followed.
		dir := filepath.Join(s.Settings.DataDir, "secrets")
		if err := atomicfile.MkdirOwned(dir, 0o700, s.UID, s.GID); err != nil {
			return fmt.Errorf("internal secrets: %w", err)
		}
		gen, err := settings.EnsureGenerated(s.Settings.DataDir, generate...)
		if err != nil {
			return fmt.Errorf("generate internal secrets in %s: %w", s.Settings.DataDir, err)
		}
		for k, v := range gen {
			secrets[k] = v
		}
		for _, name := range generate {
			if err := atomicfile.SetOwnerMode(filepath.Join(dir, name), 0o600, s.UID, s.GID); err != nil {
				return fmt.Errorf("internal secret %s: %w", name, err)
			}
		}
	}
	s.Secrets = secrets
	s.SecretsHash = secretsHash(secrets)
	return s.WriteCredentials(s.Paths.Credentials)
}

func secretsHash(secrets map[string]string) string {
	sum := sha256.New()
	names := make([]string, 0, len(secrets))
	for name := range secrets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(sum, "%s\x00%s\x00", name, secrets[name])
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// WriteCredentials writes one file per secret into dir (0700, files 0400),
// owned by the user prosody runs as: what Prosody 13's Credential() reads.
func (s *State) WriteCredentials(dir string) error {
	if err := atomicfile.MkdirOwned(dir, 0o700, s.UID, s.GID); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	for name, val := range s.Secrets {
		if _, err := atomicfile.Write(filepath.Join(dir, name), []byte(val), 0o400, s.UID, s.GID); err != nil {
			return fmt.Errorf("write credential %q into %s: %w", name, dir, err)
		}
	}
	return nil
}

// stageTLS finds, checks or generates a certificate for every host and stages
// each key readable by prosody under Paths.Staging. tlscerts logs each host's
// certificate and its warnings.
func stageTLS(_ context.Context, s *State) error {
	opts := s.tlsOptions()
	if s.Settings.ACME.Enabled {
		if p, err := acme.Stored(s.Settings.DataDir); err == nil {
			opts.Managed = &tlscerts.Managed{CertFile: p.CertFile, KeyFile: p.KeyFile, Source: tlscerts.SourceACME}
		}
	}
	res, err := tlscerts.Prepare(opts)
	if err != nil {
		return configErr(err)
	}
	s.Certs = res
	return nil
}

// tlsOptions are the certificate options of the plan and settings, without
// the stored ACME certificate (stageTLS adds it: it serves the hosts no
// mounted one covers).
func (s *State) tlsOptions() tlscerts.Options {
	return tlscerts.Options{
		Dir:             s.Settings.CertsDir,
		Hosts:           Hosts(s.Plan),
		RuntimeDir:      s.Paths.Staging,
		DataDir:         s.Settings.DataDir,
		UID:             s.UID,
		GID:             s.GID,
		Generate:        s.Plan.TLS.GenerateSelfSigned,
		AllowSelfSigned: s.Settings.TLSAllowSelfSigned || s.Plan.TLS.AllowSelfSigned,
		Logger:          s.Log.Named("tls"),
	}
}

// stageTLSWithACME gets the ACME certificate (when asked) before the TLS
// stage proper. A certificate the CA refuses is a configuration error (exit
// 78) with the reason, unless the plan allows self-signed certificates
// (development, testing, PROSODY_TLS_ALLOW_SELF_SIGNED): then a warning,
// the self-signed path, and the renewal loop keeps trying.
func stageTLSWithACME(ctx context.Context, s *State) error {
	if s.Settings.ACME.Enabled {
		if err := s.ensureACME(ctx); err != nil {
			return err
		}
	}
	return stageTLSAndInstall(ctx, s)
}

func (s *State) ensureACME(ctx context.Context) error {
	hosts, err := tlscerts.Uncovered(s.tlsOptions())
	if err != nil {
		return configErr(err)
	}
	log := s.Log.Named("acme")
	if len(hosts) == 0 {
		log.Info("acme not needed: mounted certificates cover every host")
		return nil
	}
	a := s.Settings.ACME
	m, err := acme.New(acme.Config{
		Directory: a.Directory, CAFile: a.CAFile, Email: a.Email,
		EABKid: a.EABKid, EABHmacKey: a.EABHmacKey.Reveal(),
		Challenges: a.Challenges, ListenHost: ChallengeHost(s.Settings.Interfaces),
		HTTPPort: a.HTTPPort, TLSPort: a.TLSPort,
		RenewBefore: a.RenewBefore, RetryBackoff: a.RetryBackoff,
		DataDir: s.Settings.DataDir, UID: s.UID, GID: s.GID, RootUID: s.rootUID(),
		Logger: log,
	})
	if err != nil {
		return configErr(err)
	}
	s.ACME = m
	if _, err := m.Ensure(ctx, hosts); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.Plan.TLS.GenerateSelfSigned || s.Settings.TLSAllowSelfSigned || s.Plan.TLS.AllowSelfSigned {
			log.Warn("acme certificate not obtained; using the self-signed certificate until a retry succeeds", zap.Error(err))
			return nil
		}
		return configErr(err)
	}
	return nil
}

// ChallengeHost is the address the ACME challenge servers bind: the one
// address of PROSODY_INTERFACES when it names a single IP, else every
// address ("").
func ChallengeHost(interfaces []string) string {
	if len(interfaces) == 1 && interfaces[0] != "*" && interfaces[0] != "::" {
		return interfaces[0]
	}
	return ""
}

func stageTLSAndInstall(ctx context.Context, s *State) error {
	if err := stageTLS(ctx, s); err != nil {
		return err
	}
	return s.InstallCerts()
}

// InstallCerts puts every host's pair where the rendered `certificates`
// option points (Paths.Certs).
func (s *State) InstallCerts() error {
	// Hosts often share one pair (a generated or multi-name certificate):
	// each source file is read once, however many hosts it serves.
	read := map[string][]byte{}
	for _, h := range s.Certs.Hosts {
		if err := installCert(h, s.Paths.Certs, s.UID, s.GID, read); err != nil {
			return err
		}
	}
	return nil
}

// maxCertFile caps a certificate or key file read by root: a chain of a few
// certificates is a few KiB, and a FIFO or a huge file must not stall start.
const maxCertFile = 1 << 20

// installCert copies a host's pair to <dir>/<host>.crt and .key (Prosody's own
// lookup layout), unless it is already there. Copies keep the key private.
// read holds the bytes of the source files already read by path, and gets
// those this call reads.
func installCert(h tlscerts.HostCert, dir string, uid, gid int, read map[string][]byte) error {
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
		data, ok := read[f.src]
		if !ok {
			var err error
			if data, err = atomicfile.ReadFile(f.src, atomicfile.ReadOptions{MaxBytes: maxCertFile}); err != nil {
				return fmt.Errorf("read certificate file for %s: %w", h.Host, err)
			}
			read[f.src] = data
		}
		if _, err := atomicfile.Write(f.dst, data, f.mode, uid, gid); err != nil {
			return fmt.Errorf("install certificate file for %s: %w", h.Host, err)
		}
	}
	return nil
}

// stageMigrate moves the data to PROSODY_STORAGE with prosody-migrator when
// the volume holds data of another storage.
func stageMigrate(ctx context.Context, s *State) error {
	var hosts []migrate.Host
	for _, h := range s.Plan.Hosts {
		hosts = append(hosts, migrate.Host{Name: h.Domain, Stores: migrate.HostStores()})
	}
	for _, c := range s.Plan.Components {
		switch c.Type {
		case "muc":
			hosts = append(hosts, migrate.Host{Name: c.Address, Stores: migrate.MUCStores()})
		case "http_file_share":
			hosts = append(hosts, migrate.Host{Name: c.Address, Stores: migrate.UploadStores()})
		}
	}
	st := s.Settings
	_, err := migrate.Ensure(ctx, migrate.Config{
		DataDir: st.DataDir,
		To:      st.Storage,
		Hosts:   hosts,
		Postgres: migrate.PostgresDB{Host: st.DBHost, Port: st.DBPort, Name: st.DBName, User: st.DBUser,
			Password: st.DBPassword.Reveal()},
		WorkDir: st.RuntimeDir,
		UID:     s.UID,
		GID:     s.GID,
		Env:     s.ChildEnv(""),
		Logger:  s.Log.Named("migrate"),
	})
	if err != nil {
		return configErr(err)
	}
	return nil
}

func stageRender(_ context.Context, s *State) error {
	out, err := luacfg.Render(s.Plan)
	if err != nil {
		return configErr(fmt.Errorf("render %s: %w", s.Paths.Config, err))
	}
	changed, err := s.WriteConfig(s.Paths.Config, out)
	if err != nil {
		return fmt.Errorf("write %s (PROSODY_RUNTIME_DIR): %w", s.Paths.Config, err)
	}
	sum := sha256.Sum256(out)
	s.Rendered, s.Hash = out, hex.EncodeToString(sum[:])
	s.Log.Info("config rendered", zap.String("path", s.Paths.Config), zap.Bool("changed", changed),
		zap.String("sha256", s.Hash[:16]))
	return nil
}

// stageCheck checks the rendered file: every module present, then luac and
// prosodyctl check config. Warnings are logged; errors reject the file.
//
// A file that passed before, with every other input of the verdict the same
// (checkKey), is not checked again: the pass is recorded in the data
// directory (see pkg/checkcache for why there and why it cannot be forged by
// prosody) and s.CheckCached says so. A failure, or a pass with warnings (so
// that they are logged at every start), is never recorded; neither is a file
// that is not closed (luacfg.Closed), whose verdict its bytes do not decide.
func stageCheck(ctx context.Context, s *State) error {
	s.CheckCached = false
	if missing := pfe.MissingModules(s.Plan, pfe.ModuleDirs(s.Plan)); len(missing) > 0 {
		return configErr(MissingError(missing))
	}
	if _, err := ChildUmask(s.Plan); err != nil {
		return configErr(err)
	}
	// The checkers get no PROSODY_* variable (secrets among them), only where
	// Credential() finds the secrets; they run as prosody, so Lua in the tree
	// ($lua values) never runs as root.
	opt := luacfg.CheckOptions{
		Env:  append(WithoutProsodyVars(os.Environ()), "CREDENTIALS_DIRECTORY="+s.Paths.Credentials),
		Cred: s.Cred,
		Run:  s.Exec,
	}
	verdicts := filepath.Join(s.Settings.DataDir, checkcache.FileName)
	key, why := s.checkKey(opt)
	if key != "" {
		var hit bool
		if hit, why = checkcache.Lookup(verdicts, key); hit {
			s.CheckCached = true
			s.Log.Debug("check: cached", zap.String("path", s.Paths.Config), zap.String("key", key[:16]),
				zap.String("verdicts", verdicts))
			return nil
		}
	}
	s.Log.Debug("check: running", zap.String("path", s.Paths.Config), zap.String("not_cached", why))
	warnings, err := luacfg.Check(ctx, s.Paths.Config, opt)
	for _, w := range warnings {
		s.Log.Warn("prosodyctl check config", zap.String("warning", w))
	}
	if err != nil {
		return configErr(err)
	}
	if key != "" && len(warnings) == 0 {
		if err := checkcache.Record(verdicts, key); err != nil {
			s.Log.Debug("check: pass not recorded", zap.Error(err))
		}
	}
	return nil
}

// checkKey returns the cache key of the check of s.Rendered with opt, or ""
// and the reason when it cannot have one. The key covers every input of the
// verdict: the bytes, which must be closed (luacfg.Closed: no Include,
// FileContents, ENV_ or code; only literal values and Credential()), the
// content of each credential they read, the checkers' environment and user,
// and the identity of the checker programs and of the Prosody they run
// (luacfg.CheckerFiles: a new Prosody, luac or entrypoint checks again).
func (s *State) checkKey(opt luacfg.CheckOptions) (key, why string) {
	creds, closed := luacfg.Closed(s.Rendered)
	if !closed {
		return "", "the file reads more than its bytes (Include, files, ENV_ or Lua code)"
	}
	files, err := luacfg.CheckerFiles(opt)
	if err != nil {
		return "", err.Error()
	}
	var k checkcache.Key
	k.AddString("config", s.Paths.Config) // prosodyctl resolves relative paths against it
	k.Add("bytes", s.Rendered)
	for _, name := range creds {
		data, err := atomicfile.ReadFile(filepath.Join(s.Paths.Credentials, name), atomicfile.ReadOptions{})
		if err != nil {
			return "", fmt.Sprintf("credential %s: %v", name, err)
		}
		k.AddString("credential", name)
		k.Add("content", data)
	}
	env := slices.Clone(opt.Env)
	slices.Sort(env)
	k.AddString("env", strings.Join(env, "\x00"))
	if opt.Cred != nil {
		k.AddString("cred", fmt.Sprintf("%d:%d %v %s", opt.Cred.UID, opt.Cred.GID, opt.Cred.Groups, opt.Cred.Home))
	} else {
		k.AddString("cred", fmt.Sprintf("self %d:%d", os.Geteuid(), os.Getegid()))
	}
	k.AddFiles(files...)
	return k.Sum(), ""
}

// MissingError lists modules the plan needs that are not installed.
func MissingError(missing []pfe.Missing) error {
	var b strings.Builder
	for _, m := range missing {
		by := "the core layers"
		if m.Feature != "" {
			by = "feature " + m.Feature
		}
		fmt.Fprintf(&b, "\n  mod_%s (wanted by %s): %s", m.Module, by, m.Hint)
	}
	return fmt.Errorf("%d module(s) not installed:%s", len(missing), b.String())
}
