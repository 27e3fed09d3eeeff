package initsteps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/acme"
	"github.com/prosody-pfe/prosody-pfe/pkg/listeners"
	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
	"github.com/prosody-pfe/prosody-pfe/pkg/tlscerts"
)

// ConfigError marks a stage failure caused by configuration: the entrypoint
// exits 78 (EX_CONFIG) for it, 1 for anything else.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

// IsConfig reports whether err (or an error it wraps) is a ConfigError and
// not a full volume (IsNoSpace), which no configuration change fixes.
func IsConfig(err error) bool {
	var ce ConfigError
	return errors.As(err, &ce) && !IsNoSpace(err)
}

func configErr(err error) error { return ConfigError{Err: err} }

// Paths are the files one run of the config stages writes. The server's own
// run writes the live files Prosody reads; a reload's candidate writes beside
// them, so nothing it makes touches the running server until it is accepted.
// That is the whole difference between the two: the stages do not test it.
type Paths struct {
	// Config is the rendered file.
	Config string
	// Credentials is the CREDENTIALS_DIRECTORY Prosody 13's Credential() reads.
	Credentials string
	// Staging is where tlscerts stages the key pairs it makes readable to
	// Prosody (tlscerts.Options.RuntimeDir).
	Staging string
	// Certs is what the rendered `certificates` option points at: pairs are
	// installed there by Startup's tls stage and by a reload's install step.
	Certs string
}

// LivePaths are the files under runtimeDir that Prosody runs, with the config
// file named configName (prosody.cfg.lua for the server; verbs that render
// beside a running server use their own name).
func LivePaths(runtimeDir, configName string) Paths {
	return Paths{
		Config:      filepath.Join(runtimeDir, configName),
		Credentials: filepath.Join(runtimeDir, "credentials"),
		Staging:     runtimeDir,
		Certs:       filepath.Join(runtimeDir, "certs"),
	}
}

// CandidateDir is where a reload's candidate stages its keys and secrets; it
// is removed after each reload.
func CandidateDir(runtimeDir string) string { return filepath.Join(runtimeDir, "next") }

// CandidatePaths are a reload candidate's files: a side config file and the
// staging directory CandidateDir. Certs stays the live directory: it is only
// written when the candidate is installed.
func CandidatePaths(runtimeDir string) Paths {
	next := CandidateDir(runtimeDir)
	return Paths{
		Config:      filepath.Join(runtimeDir, "prosody.next.cfg.lua"),
		Credentials: filepath.Join(next, "credentials"),
		Staging:     next,
		Certs:       filepath.Join(runtimeDir, "certs"),
	}
}

// Config is what New needs before the settings are known.
type Config struct {
	// Env is the entrypoint's environment: where the settings come from, and
	// the base of every child's environment.
	Env []string
	// Stderr receives operator-facing reports (settings warnings, the
	// migration report). Nil discards them.
	Stderr io.Writer
	// ConfigName is the rendered file's name in PROSODY_RUNTIME_DIR; ""
	// means prosody.cfg.lua. Verbs that render beside a running server use
	// their own name, so they never rewrite the file it runs.
	ConfigName string
	// Logger makes the root logger once validate-env has read the settings;
	// nil means no logging.
	Logger func(*settings.Settings) *zap.Logger
}

// State is what the init stages produce and pass along, and what a reload
// re-derives on a change. The stages fill it in order; a field a stage
// produces is zero until that stage ran.
type State struct {
	Env    []string  // the entrypoint's environment (Config.Env)
	Stderr io.Writer // where operator-facing reports go

	// Set by validate-env.
	Settings *settings.Settings
	Log      *zap.Logger
	Paths    Paths
	// Cred is who prosody runs as (nil: as the entrypoint). UID/GID own the
	// files prosody must read; -1 when the entrypoint is not root.
	Cred     *supervise.Credential
	UID, GID int

	Tree  *pfe.Tree
	Plan  *pfe.Plan
	Certs *tlscerts.Result
	// ACME renews the ACME certificate while the server runs; nil when ACME
	// is off or mounted certificates cover every host (set by TLSWithACME).
	ACME        *acme.Manager
	Secrets     map[string]string // credential name -> value; never logged
	SecretsHash string            // sha256 over the secrets: tells a rotated secret
	Rendered    []byte
	Hash        string // sha256 of Rendered, hex
	// CheckCached is true when the check stage found Rendered passed before
	// with the same checkers and skipped them (set by check).
	CheckCached bool

	// Listeners are the sockets held for Prosody (set by the listeners
	// stage; nil with PROSODY_SOCKET_ACTIVATION=false). A reload's candidate
	// shares the running state's: there is one set per entrypoint.
	Listeners *listeners.Set

	// Exec runs helper commands (luac, prosodyctl). Nil runs them directly;
	// once the supervisor reaps, commands must go through it (Supervisor.Exec)
	// or lose their exit status.
	Exec luacfg.RunFunc

	cfg         Config
	treesWarned bool // the config trees' problems were logged (CheckTrees)
}

// New returns the state the stages fill in, starting with validate-env.
func New(cfg Config) *State {
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.ConfigName == "" {
		cfg.ConfigName = "prosody.cfg.lua"
	}
	return &State{Env: cfg.Env, Stderr: cfg.Stderr, Log: zap.NewNop(), UID: -1, GID: -1, cfg: cfg}
}

// ValidateEnv reads and checks every PROSODY_* variable at once (a
// *settings.Problems error lists them), makes the logger, and decides who
// prosody runs as.
var ValidateEnv = Stage[*State]{Name: "validate-env", Run: stageValidateEnv}

func stageValidateEnv(_ context.Context, s *State) error {
	st, warnings, err := settings.Load(s.Env)
	for _, w := range warnings {
		fmt.Fprintf(s.Stderr, "entrypoint: warning: %s\n", w)
	}
	if err != nil {
		return configErr(err)
	}
	s.Settings = st
	if s.cfg.Logger != nil {
		s.Log = s.cfg.Logger(st)
	}
	s.Paths = LivePaths(st.RuntimeDir, s.cfg.ConfigName)
	cred, err := ChildCredential(st)
	if err != nil {
		return err
	}
	s.Cred = cred
	if cred != nil {
		s.UID, s.GID = int(cred.UID), int(cred.GID)
	}
	return nil
}

// ChildCredential is who prosody (and everything that runs the config's Lua:
// prosodyctl, the checks) runs as: nil when the entrypoint is not root (they
// run as the entrypoint), else the prosody user or PROSODY_UID/PROSODY_GID,
// with HOME the data directory when the user has none. Its error is a
// configuration error.
func ChildCredential(st *settings.Settings) (*supervise.Credential, error) {
	cred, err := supervise.PrivilegeDrop("prosody", st.UserSpec, st.GroupSpec)
	if err != nil {
		return nil, configErr(fmt.Errorf("choose the user prosody runs as (PROSODY_UID, PROSODY_GID): %w", err))
	}
	if cred != nil && cred.Home == "" {
		cred.Home = st.DataDir
	}
	return cred, nil
}

// Candidate is a copy of s for a reload: new settings, the candidate's paths,
// and everything the stages produce still to be made. The running state is
// not changed.
func (s *State) Candidate(st *settings.Settings) *State {
	next := *s
	next.Settings = st
	next.Paths = CandidatePaths(st.RuntimeDir)
	next.Tree, next.Plan, next.Certs = nil, nil, nil
	next.Secrets, next.SecretsHash, next.Rendered, next.Hash = nil, "", nil, ""
	return &next
}

// Hosts lists every host the plan serves: VirtualHosts, then Components.
func Hosts(p *pfe.Plan) []string {
	var hosts []string
	for _, h := range p.Hosts {
		hosts = append(hosts, h.Domain)
	}
	for _, c := range p.Components {
		hosts = append(hosts, c.Address)
	}
	return hosts
}

// AdminSocket is the admin socket's path: `admin_socket` is relative to
// data_path.
func (s *State) AdminSocket() string {
	path := "prosody.sock"
	if v, ok := pfe.GlobalOption(s.Plan, "admin_socket").(string); ok {
		path = v
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(s.Settings.DataDir, path)
	}
	return path
}
