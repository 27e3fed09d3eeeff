package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// mkdirHelperEnv makes the test binary call MkdirOwned(path, 0750, -1, -1)
// and exit: the way to run it as another user.
const mkdirHelperEnv = "ATOMICFILE_TEST_MKDIR"

func TestMain(m *testing.M) {
	if path := os.Getenv(mkdirHelperEnv); path != "" {
		if err := atomicfile.MkdirOwned(path, 0o750, -1, -1); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A non-root entrypoint (Kubernetes runAsUser with fsGroup) finds its volume's
// root owned by root, group-writable for its group: it may write there but
// not chmod it. MkdirOwned accepts it as it is; a directory it can neither
// chmod nor write in is still an error.
func TestMkdirOwnedAcceptsAWritableVolumeRoot(t *testing.T) {
	uid, gid := prosodytest.IDs(t)
	// Not t.TempDir: its parent is private to root, and uid must reach vol.
	base, err := os.MkdirTemp("", "atomicfile-volume-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(base, "vol")
	if err := os.Mkdir(vol, 0o2775); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(vol, 0, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(vol, 0o2775); err != nil { // mkdir's mode passes through the umask
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(path string) error {
		// As uid with its group: what the kubelet gives the container.
		out, err := prosodytest.As(t, uid, gid, []string{mkdirHelperEnv + "=" + path}, self)
		if err != nil {
			t.Logf("%s", out)
		}
		return err
	}
	if err := run(vol); err != nil {
		t.Errorf("MkdirOwned on a group-writable volume root owned by root: %v", err)
	}
	if fi, err := os.Stat(vol); err != nil || fi.Mode().Perm() != 0o775 {
		t.Errorf("volume root mode changed: %v %v", fi.Mode(), err)
	}
	if err := os.Chmod(vol, 0o2755); err != nil {
		t.Fatal(err)
	}
	if err := run(vol); err == nil {
		t.Error("MkdirOwned accepted a root-owned directory the caller cannot write in")
	}
}
