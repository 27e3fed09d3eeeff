package initsteps_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// ownConfig writes a prosody.cfg.lua in the style of the official image's documentation into
// the server's root and returns the environment that names it.
func ownConfig(t *testing.T, extra map[string]string, body func(c2s int) string) (root string, env []string, file string) {
	t.Helper()
	root, env = server(t, extra)
	c2s := 0
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PROSODY_C2S_PORT="); ok {
			fmt.Sscan(v, &c2s)
		}
	}
	file = filepath.Join(root, "own", "prosody.cfg.lua")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(body(c2s)), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, append(env, "PROSODY_CONFIG_FILE="+file, "PROSODY_TLS_ALLOW_SELF_SIGNED=true"), file
}

func officialStyle(c2s int) string {
	return fmt.Sprintf(`-- as in the official image's documentation
admins = { "admin@localhost" }
modules_enabled = { "disco"; "roster"; "saslauth"; "tls"; "ping"; "admin_shell" }
c2s_ports = { %d }
interfaces = { "127.0.0.1" }
authentication = "internal_hashed"
storage = "internal"
log = { info = "*console" }
VirtualHost "localhost"
Component "conference.localhost" "muc"
`, c2s)
}

// A bring-your-own config is copied where Prosody reads it (the operator's file is not what
// Prosody runs, so an edit is checked before it reaches it), read with Prosody's parser into a
// plan (hosts, components, modules), and checked; nothing is rendered from the tree.
func TestOwnConfigIsCopiedReadAndChecked(t *testing.T) {
	_, env, file := ownConfig(t, nil, officialStyle)
	s := initsteps.New(initsteps.Config{Env: env})
	results, err := runConfig(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(initsteps.ConfigStages(s.Settings)); !slices.Equal(got, []string{"config-file", "secrets", "tls", "check"}) {
		t.Errorf("config stages = %v; want no plan or render from the tree", got)
	}
	_ = results
	want, _ := os.ReadFile(file)
	got, err := os.ReadFile(s.Paths.Config)
	if err != nil || !bytes.Equal(got, want) || s.Paths.Config == file {
		t.Fatalf("%s holds %q (%v); want a copy of %s", s.Paths.Config, got, err, file)
	}
	if !bytes.Equal(s.Rendered, want) || s.Hash == "" {
		t.Errorf("state's bytes are not the file's")
	}
	if !slices.Equal(s.Plan.Domains, []string{"localhost"}) || len(s.Plan.Components) != 1 || s.Plan.Components[0].Type != "muc" {
		t.Errorf("plan: domains %v, components %+v", s.Plan.Domains, s.Plan.Components)
	}
	if !pfe.HasGlobalModule(s.Plan, "admin_shell") || pfe.GlobalOption(s.Plan, "authentication") != "internal_hashed" {
		t.Errorf("global section: %+v", s.Plan.Global)
	}
	if initsteps.SourceFor(s.Settings).Name != "file" {
		t.Errorf("source = %q", initsteps.SourceFor(s.Settings).Name)
	}
}

// A Credential() in the operator's file is served the same way as in a rendered one: the
// database password from PROSODY_DB_PASSWORD, in the credentials directory.
func TestOwnConfigCredentials(t *testing.T) {
	_, env, _ := ownConfig(t, map[string]string{"PROSODY_DB_PASSWORD": "s3cret-pw"}, func(c2s int) string {
		return officialStyle(c2s) + `sql_password_unused = Credential("db_password")` + "\n"
	})
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := runConfig(t, s); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.Paths.Credentials, "db_password"))
	if err != nil || string(got) != "s3cret-pw" {
		t.Fatalf("credential db_password = %q, %v", got, err)
	}
	if bytes.Contains(s.Rendered, []byte("s3cret-pw")) {
		t.Fatal("the secret reached the config file")
	}
}

// What an operator gets wrong is refused before Prosody starts, naming the variable and
// the fix: a file Prosody's parser refuses, a probe host the file does not serve, a probe
// port it does not listen on, a path that is not a file.
func TestOwnConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra map[string]string
		body  func(int) string
		want  string
	}{
		{"syntax", nil, func(int) string { return "VirtualHost \"localhost\"\nmodules_enabled = {\n" }, "parser refused"},
		{"domain", map[string]string{"PROSODY_DOMAIN": "example.org"}, officialStyle, `PROSODY_DOMAIN="example.org" is not a VirtualHost`},
		{"port", nil, func(int) string { return officialStyle(1) }, "is not among the c2s_ports"},
		{"no host", nil, func(c2s int) string { return fmt.Sprintf("c2s_ports = { %d }\n", c2s) }, "declares no VirtualHost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, env, _ := ownConfig(t, tc.extra, tc.body)
			s := initsteps.New(initsteps.Config{Env: env})
			_, err := runConfig(t, s)
			var se *initsteps.StageError
			if !errors.As(err, &se) || se.Stage != "config-file" || !initsteps.IsConfig(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want a config-file configuration error with %q", err, tc.want)
			}
		})
	}
	_, env, file := ownConfig(t, nil, officialStyle)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(file, 0o755); err != nil {
		t.Fatal(err)
	}
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := runConfig(t, s); err == nil || !strings.Contains(err.Error(), "PROSODY_CONFIG_FILE=") {
		t.Fatalf("a directory as PROSODY_CONFIG_FILE: err = %v", err)
	}
}
