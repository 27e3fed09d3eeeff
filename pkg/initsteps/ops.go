package initsteps

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/backup"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// Restore restores the archive at file into the stopped data directory of
// the server env describes (`entrypoint restore FILE`): the settings and
// the plan first (who owns the data, where the admin socket and c2s are, so
// that a running server is refused), then backup.Restore. The logger is at
// level info on stderr. It returns the settings for the caller's report; a
// failed stage is the error as Run returns it, a failed restore is
// backup.Restore's.
func Restore(ctx context.Context, env []string, stderr io.Writer, file string) (*backup.RestoreResult, *settings.Settings, error) {
	s := New(Config{Env: env, Stderr: stderr, Logger: RootLogger(stderr, "info")})
	defer s.Log.Sync() //nolint:errcheck // nothing to do about a failed flush
	if _, err := Run(ctx, []Stage[*State]{ValidateEnv, Plan}, s, nil, nil); err != nil {
		return nil, nil, err
	}
	st := s.Settings
	res, err := backup.Restore(ctx, backup.RestoreConfig{DataDir: st.DataDir, AdminSocket: s.AdminSocket(),
		C2SAddr: st.C2SProbeAddr(), UID: s.UID, GID: s.GID, Logger: s.Log}, file)
	return res, st, err
}

// BackupConfig is the backup of the data directory of st (`entrypoint
// backup`): its storage, hosts and database, with version and log.
func BackupConfig(st *settings.Settings, version string, log *zap.Logger) backup.Config {
	return backup.Config{DataDir: st.DataDir, Storage: st.Storage, Profile: st.Profile, Hosts: st.Domains(),
		Version: version, Logger: log,
		Postgres: backup.Postgres{Host: st.DBHost, Port: st.DBPort, Name: st.DBName, User: st.DBUser, Password: st.DBPassword.Reveal()}}
}

// Modules is the inventory of `entrypoint modules list`: every installed
// module (core, community, PROSODY_PLUGIN_DIR) and the features of the
// config tree using it. A tree that cannot be loaded is a configuration
// error.
func Modules(st *settings.Settings) ([]pfe.InstalledModule, error) {
	tree, err := pfe.Load(st.ConfigDir, st.CustomDir)
	if err != nil {
		return nil, configErr(fmt.Errorf("load the config tree (PROSODY_CONFIG_DIR=%s): %w", st.ConfigDir, err))
	}
	mods, err := tree.Inventory(st.PluginDir, pfe.DpkgList)
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	return mods, nil
}

// ValidateCredential is who `entrypoint validate` runs the tree's Lua as
// (prosodyctl check config): prosody, and in production only from config
// trees nobody but root can change (CheckTrees). The warnings are the
// trees' problems that do not refuse; errors are configuration errors.
func ValidateCredential(st *settings.Settings) (*supervise.Credential, []string, error) {
	warnings, err := CheckTrees(st)
	if err != nil {
		return nil, warnings, configErr(err)
	}
	cred, err := ChildCredential(st)
	return cred, warnings, err
}

// CertPool reads the PEM file of CA certificates that `entrypoint verify
// --ca FILE` trusts; "" is nil, the system's roots.
func CertPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	roots := x509.NewCertPool()
	if err != nil || !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %q: not a readable PEM file of certificates (%v)", file, err)
	}
	return roots, nil
}
