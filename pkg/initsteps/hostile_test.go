package initsteps_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
)

// The runtime directory and the rendered config are root's: prosody reads the
// file (group prosody, 0640) and can neither change it nor replace it.
func TestRenderedConfigIsRoots(t *testing.T) {
	root, env := server(t, nil)
	runtimeDir := filepath.Join(root, "runtime")
	uid, gid := prosodytest.IDs(t)
	// As an older version left it: the directory given to prosody.
	if err := os.Chown(runtimeDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	s := initsteps.New(initsteps.Config{Env: env})
	if _, err := runConfig(t, s); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{runtimeDir, os.ModeDir | 0o755, 0, 0},
		{s.Paths.Config, 0o640, 0, gid},
		{s.Paths.Certs, os.ModeDir | 0o750, uid, gid},
	} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || int(st.Uid) != c.uid || int(st.Gid) != c.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", c.path, fi.Mode(), st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
	}
}
