package atomicfile_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

func owner(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// A data volume of another image's prosody user (uid 4100 here) becomes ours (4200): the top,
// its directories and files of that uid. What another uid owns is left alone, and a link is
// never followed: a file outside the volume that a link points at keeps its owner.
func TestAdoptReownsOnlyThatUIDAndFollowsNoLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test chowns files: run it as root (CI does)")
	}
	const from, to = 4100, 4200
	root := t.TempDir()
	data := filepath.Join(root, "data")
	outside := filepath.Join(root, "outside-secret")
	for _, d := range []string{data, filepath.Join(data, "localhost", "accounts")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]int{
		filepath.Join(data, "localhost", "accounts", "alice.dat"): from,
		filepath.Join(data, "localhost", "other.dat"):             1234,
		outside: from,
	}
	for f, uid := range files {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(f, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{data, filepath.Join(data, "localhost"), filepath.Join(data, "localhost", "accounts")} {
		if err := os.Lchown(d, from, from); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(data, "localhost", "planted")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, from, from); err != nil {
		t.Fatal(err)
	}

	n, err := atomicfile.Adopt(data, from, to, to)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // data, localhost, accounts, alice.dat
		t.Errorf("re-owned %d entries, want 4", n)
	}
	for path, want := range map[string]int{
		data: to, filepath.Join(data, "localhost"): to, filepath.Join(data, "localhost", "accounts"): to,
		filepath.Join(data, "localhost", "accounts", "alice.dat"): to,
		filepath.Join(data, "localhost", "other.dat"):             1234,
		outside: from, link: from,
	} {
		if got := owner(t, path); got != want {
			t.Errorf("%s: owner %d, want %d", path, got, want)
		}
	}
	if uid, _, err := atomicfile.Owner(data); err != nil || uid != to {
		t.Errorf("Owner = %d, %v", uid, err)
	}
}

// A walk that fails half-way (here: a tree deeper than Adopt goes) leaves the top to the
// other uid: start-up looks only at the top's owner, so the next start tries again instead
// of leaving the rest of the volume to the other uid for good.
func TestAdoptThatFailsLeavesTheTopForTheNextTry(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test chowns files: run it as root (CI does)")
	}
	const from, to = 4100, 4200
	data := filepath.Join(t.TempDir(), "data")
	deep := data
	for range 70 {
		deep = filepath.Join(deep, "d")
	}
	if err := os.MkdirAll(deep, 0o750); err != nil {
		t.Fatal(err)
	}
	for p := deep; ; p = filepath.Dir(p) {
		if err := os.Lchown(p, from, from); err != nil {
			t.Fatal(err)
		}
		if p == data {
			break
		}
	}
	if _, err := atomicfile.Adopt(data, from, to, to); err == nil {
		t.Fatal("Adopt of a tree deeper than it walks succeeded")
	}
	if got := owner(t, data); got != from {
		t.Errorf("after a failed walk the top belongs to %d, want %d (the next start would not try again)", got, from)
	}
}
