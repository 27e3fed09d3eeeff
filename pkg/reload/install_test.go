package reload

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/tlscerts"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func contents(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// setup is a live runtime with one host's old pair and config, and a
// candidate with a new pair, a secret and a staged config.
func setup(t *testing.T) (next *initsteps.State, live initsteps.Paths, side string) {
	t.Helper()
	root := t.TempDir()
	live = initsteps.LivePaths(filepath.Join(root, "runtime"), "prosody.cfg.lua")
	for _, d := range []string{live.Certs, filepath.Dir(live.Config), filepath.Join(root, "src")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(live.Certs, "example.com.crt"), "old cert")
	write(t, live.Config, "old config")
	src := filepath.Join(root, "src")
	write(t, filepath.Join(src, "new.crt"), "new cert")
	write(t, filepath.Join(src, "new.key"), "new key")
	side = filepath.Join(root, "staged.cfg.lua")
	write(t, side, "new config")
	next = initsteps.New(initsteps.Config{})
	next.Certs = &tlscerts.Result{Hosts: []tlscerts.HostCert{{Host: "example.com",
		CertFile: filepath.Join(src, "new.crt"), KeyFile: filepath.Join(src, "new.key")}}}
	next.Secrets = map[string]string{"upload_secret": "s3cret"}
	return next, live, side
}

// A failure after the certificates went in (the credentials directory
// cannot be made: a file is in its place) puts the old pair back and leaves
// the live config alone: Prosody never sees half a candidate.
func TestInstallIsAllOrNothing(t *testing.T) {
	next, live, side := setup(t)
	write(t, live.Credentials, "not a directory")
	before := contents(t, live.Certs)

	if err := install(next, live, side); err == nil {
		t.Fatal("install succeeded with a file where the credentials directory goes")
	}
	if after := contents(t, live.Certs); !maps.Equal(after, before) {
		t.Errorf("certificates after a failed install: %v, want them as before: %v", after, before)
	}
	if b, _ := os.ReadFile(live.Config); string(b) != "old config" {
		t.Errorf("live config is %q after a failed install", b)
	}
}

// When every step works, everything is in place.
func TestInstallPutsEverythingInPlace(t *testing.T) {
	next, live, side := setup(t)
	if err := install(next, live, side); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"example.com.crt": "new cert", "example.com.key": "new key"}
	if got := contents(t, live.Certs); !maps.Equal(got, want) {
		t.Errorf("certificates: %v, want %v", got, want)
	}
	if got := contents(t, live.Credentials); got["upload_secret"] != "s3cret" {
		t.Errorf("credentials: %v", got)
	}
	if b, _ := os.ReadFile(live.Config); string(b) != "new config" {
		t.Errorf("live config is %q", b)
	}
}
