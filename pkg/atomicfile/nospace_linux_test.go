package atomicfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// A write to a full volume (a real 64 KiB tmpfs, filled) fails with an error
// that callers recognise (ErrNoSpace) and that names the volume's directory,
// and leaves no temporary file behind; the file it was replacing is intact.
func TestFullVolumeIsErrNoSpaceAndLeavesNothing(t *testing.T) {
	rootAndProsody(t)
	dir := prosodytest.Volume(t, 64<<10)
	path := filepath.Join(dir, "migrations.json")
	if _, err := atomicfile.Write(path, []byte("old\n"), 0o640, -1, -1); err != nil {
		t.Fatal(err)
	}
	prosodytest.Fill(t, dir, 0)

	_, err := atomicfile.Write(path, []byte(strings.Repeat("x", 8<<10)), 0o640, -1, -1)
	if !errors.Is(err, atomicfile.ErrNoSpace) || !atomicfile.IsNoSpace(err) {
		t.Fatalf("Write on a full volume = %v; want ErrNoSpace", err)
	}
	if !strings.Contains(err.Error(), "volume holding "+dir+" is full") {
		t.Errorf("message %q does not name the full volume", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Errorf("target now holds %q", b)
	}
	assertOnly(t, dir, ".filler", "migrations.json")
}

// WriteAll on a volume with room for the first file but not the second
// changes neither (a new key without its certificate is the failure this
// prevents) and leaves no temporary file; with room, both are replaced and no
// hidden name is left.
func TestWriteAllIsAllOrNothing(t *testing.T) {
	rootAndProsody(t)
	dir := prosodytest.Volume(t, 64<<10)
	key, crt := filepath.Join(dir, "selfsigned.key"), filepath.Join(dir, "selfsigned.crt")
	pair := func(k, c string) []atomicfile.File {
		return []atomicfile.File{{Path: key, Data: []byte(k), Mode: 0o600}, {Path: crt, Data: []byte(c), Mode: 0o644}}
	}
	if err := atomicfile.WriteAll(pair("old key", "old cert"), -1, -1); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, "selfsigned.crt", "selfsigned.key")

	prosodytest.Fill(t, dir, 1) // one block: the new key fits, the certificate does not
	err := atomicfile.WriteAll(pair("new key", strings.Repeat("c", 6000)), -1, -1)
	if !errors.Is(err, atomicfile.ErrNoSpace) {
		t.Fatalf("WriteAll on a nearly full volume = %v; want ErrNoSpace", err)
	}
	for path, want := range map[string]string{key: "old key", crt: "old cert"} {
		if b, _ := os.ReadFile(path); string(b) != want {
			t.Errorf("%s holds %q; want %q", path, b, want)
		}
	}
	assertOnly(t, dir, ".filler", "selfsigned.crt", "selfsigned.key")

	if err := os.Remove(filepath.Join(dir, ".filler")); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteAll(pair("new key", "new cert"), -1, -1); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{key: "new key", crt: "new cert"} {
		if b, _ := os.ReadFile(path); string(b) != want {
			t.Errorf("%s holds %q; want %q", path, b, want)
		}
	}
	if st := stat(t, key); st.Mode&0o777 != 0o600 {
		t.Errorf("key mode %#o", st.Mode&0o777)
	}
	assertOnly(t, dir, "selfsigned.crt", "selfsigned.key")
}

// EnsureFile creates a missing file empty and private, and makes an existing
// one private without touching its content.
func TestEnsureFileKeepsContentAndMakesPrivate(t *testing.T) {
	uid, gid := rootAndProsody(t)
	dir := t.TempDir()
	fresh, existing := filepath.Join(dir, "fresh.sqlite"), filepath.Join(dir, "prosody.sqlite")
	if err := os.WriteFile(existing, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fresh, existing} {
		if err := atomicfile.EnsureFile(path, 0o600, uid, gid); err != nil {
			t.Fatal(err)
		}
		if st := stat(t, path); st.Mode&0o777 != 0o600 || int(st.Uid) != uid {
			t.Errorf("%s: mode %#o owner %d; want 0600 owned by %d", path, st.Mode&0o777, st.Uid, uid)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "data" {
		t.Errorf("existing file now holds %q", b)
	}
	if fi, _ := os.Stat(fresh); fi.Size() != 0 {
		t.Errorf("fresh file has %d bytes", fi.Size())
	}
}
