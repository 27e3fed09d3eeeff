package initsteps_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/backup"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

func load(t *testing.T, env []string) *settings.Settings {
	t.Helper()
	st, _, err := settings.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A backup made with BackupConfig restores through Restore into the emptied
// data directory of a stopped server, owned by prosody again.
func TestBackupThenRestoreBringsTheDataBack(t *testing.T) {
	root, env := server(t, nil)
	data := filepath.Join(root, "data")
	account := filepath.Join(data, "localhost", "accounts", "alice.dat")
	if err := os.MkdirAll(filepath.Dir(account), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(account, []byte("return { password = \"x\" };\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	cfg := initsteps.BackupConfig(load(t, env), "test", zap.NewNop())
	if _, err := backup.CreateFile(context.Background(), cfg, archive, &bytes.Buffer{}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(data, "localhost")); err != nil {
		t.Fatal(err)
	}
	res, st, err := initsteps.Restore(context.Background(), env, &bytes.Buffer{}, archive)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if st.DataDir != data || res.Files == 0 {
		t.Errorf("restored %d files into %s, want some into %s", res.Files, st.DataDir, data)
	}
	b, err := os.ReadFile(account)
	if err != nil || !strings.Contains(string(b), "password") {
		t.Fatalf("account after restore: %q, %v", b, err)
	}
	uid, _ := prosodytest.IDs(t)
	if fi, err := os.Stat(account); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Errorf("restored account not owned by prosody (uid %d): %v", uid, err)
	}
}

// Restore with a bad environment is the settings' error; nothing is touched.
func TestRestoreBadEnvironment(t *testing.T) {
	_, env := server(t, map[string]string{"PROSODY_C2S_PORT": "many"})
	_, _, err := initsteps.Restore(context.Background(), env, &bytes.Buffer{}, "/nonexistent.tar.gz")
	if err == nil || !strings.Contains(err.Error(), "PROSODY_C2S_PORT") {
		t.Fatalf("err %v, want one naming PROSODY_C2S_PORT", err)
	}
}

// Modules lists a module of PROSODY_PLUGIN_DIR with its source; a config tree
// that cannot be loaded is a configuration error naming PROSODY_CONFIG_DIR.
func TestModulesInventory(t *testing.T) {
	plugins := t.TempDir()
	if err := os.WriteFile(filepath.Join(plugins, "mod_pfe_test_extra.lua"), []byte("-- test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, env := server(t, map[string]string{"PROSODY_PLUGIN_DIR": plugins})
	mods, err := initsteps.Modules(load(t, env))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(mods, func(m pfe.InstalledModule) bool { return m.Name == "pfe_test_extra" })
	if i < 0 || mods[i].Source != "plugin-dir" {
		t.Fatalf("pfe_test_extra not listed from the plugin directory: %+v", mods)
	}
	if !slices.ContainsFunc(mods, func(m pfe.InstalledModule) bool { return m.Source == "core" }) {
		t.Error("no core module listed")
	}
	_, env = server(t, map[string]string{"PROSODY_CONFIG_DIR": filepath.Join(t.TempDir(), "missing")})
	if _, err := initsteps.Modules(load(t, env)); !initsteps.IsConfig(err) || !strings.Contains(err.Error(), "PROSODY_CONFIG_DIR") {
		t.Errorf("a missing config tree: %v, want a configuration error naming PROSODY_CONFIG_DIR", err)
	}
}

// validate runs the tree's Lua as prosody; in production a custom tree others
// can change refuses it (a configuration error), in development it warns.
func TestValidateCredential(t *testing.T) {
	_, env := server(t, nil)
	st := load(t, env)
	cred, warnings, err := initsteps.ValidateCredential(st)
	uid, _ := prosodytest.IDs(t)
	if err != nil || len(warnings) != 0 || cred == nil || int(cred.UID) != uid {
		t.Fatalf("cred %+v, warnings %q, err %v; want prosody (%d), nothing else", cred, warnings, err, uid)
	}
	if err := os.Chmod(st.CustomDir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, warnings, err = initsteps.ValidateCredential(st)
	if err != nil || len(warnings) != 1 {
		t.Errorf("development, custom dir 0777: warnings %q, err %v; want one warning", warnings, err)
	}
	st.Environment = "production"
	if _, _, err := initsteps.ValidateCredential(st); !initsteps.IsConfig(err) || !strings.Contains(err.Error(), "PROSODY_CUSTOM_DIR") {
		t.Errorf("production, custom dir 0777: %v, want a configuration error naming PROSODY_CUSTOM_DIR", err)
	}
}

// verify --ca takes a PEM file of certificates; anything else is refused
// naming the file; no file means the system's roots.
func TestCertPool(t *testing.T) {
	if p, err := initsteps.CertPool(""); p != nil || err != nil {
		t.Errorf("no file: %v, %v; want nil, nil", p, err)
	}
	bad := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(t.TempDir(), "missing.pem")} {
		if _, err := initsteps.CertPool(f); err == nil || !strings.Contains(err.Error(), `"`+f+`"`) {
			t.Errorf("CertPool(%s): %v, want an error naming the file", f, err)
		}
	}
	root, env := server(t, nil)
	if _, err := runConfig(t, initsteps.New(initsteps.Config{Env: env})); err != nil {
		t.Fatal(err)
	}
	certs, _ := filepath.Glob(filepath.Join(root, "runtime", "certs", "*.crt"))
	if len(certs) == 0 {
		t.Fatal("the tls stage made no certificate")
	}
	if p, err := initsteps.CertPool(certs[0]); err != nil || p == nil {
		t.Errorf("CertPool(%s): %v, %v; want a pool", certs[0], p, err)
	}
}
