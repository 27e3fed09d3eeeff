package tlscerts

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
)

// ownerMode returns a file's uid, gid and permission bits.
func ownerMode(t *testing.T, path string) (int, int, os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), fi.Mode().Perm()
}

func TestStagingRootOnlyKey(t *testing.T) {
	requireRoot(t)
	uid, gid := prosodytest.IDs(t)
	ca := newCA(t)
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) (crt, key string)
	}{
		{"mounted secret: key root 0600", func(t *testing.T, dir string) (string, string) {
			c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
			return writeFile(t, dir, "example.com.crt", c, 0o644), writeFile(t, dir, "example.com.key", k, 0o600)
		}},
		{"lets encrypt: archive directory root 0700", func(t *testing.T, dir string) (string, string) {
			c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
			writeFile(t, dir, "archive/example.com/fullchain1.pem", c, 0o644)
			writeFile(t, dir, "archive/example.com/privkey1.pem", k, 0o644)
			if err := os.Chmod(filepath.Join(dir, "archive"), 0o700); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(dir, "live/example.com"), 0o755)
			crt, key := filepath.Join(dir, "live/example.com/fullchain.pem"), filepath.Join(dir, "live/example.com/privkey.pem")
			os.Symlink("../../archive/example.com/fullchain1.pem", crt)
			os.Symlink("../../archive/example.com/privkey1.pem", key)
			return crt, key
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, runtime := searchableTempDir(t), t.TempDir()
			srcCrt, srcKey := tc.setup(t, dir)
			opts := baseOptions(dir, "example.com")
			opts.RuntimeDir, opts.UID, opts.GID = runtime, uid, gid
			res, err := Prepare(opts)
			if err != nil {
				t.Fatal(err)
			}
			hc := res.Hosts[0]
			if hc.Source != SourceStaged {
				t.Fatalf("Source = %s, want staged", hc.Source)
			}
			if hc.KeyFile != filepath.Join(runtime, "certs/example.com.key") || hc.CertFile != filepath.Join(runtime, "certs/example.com.crt") {
				t.Errorf("staged to %s, %s", hc.CertFile, hc.KeyFile)
			}
			if hc.SourceCert != srcCrt || hc.SourceKey != srcKey {
				t.Errorf("sources = %s, %s; want %s, %s", hc.SourceCert, hc.SourceKey, srcCrt, srcKey)
			}
			for path, wantMode := range map[string]os.FileMode{hc.KeyFile: 0o600, hc.CertFile: 0o644} {
				u, g, m := ownerMode(t, path)
				if u != uid || g != gid || m != wantMode {
					t.Errorf("%s: owner %d:%d mode %#o, want %d:%d %#o", path, u, g, m, uid, gid, wantMode)
				}
			}
			same := func(a, b string) bool {
				x, _ := os.ReadFile(a)
				y, _ := os.ReadFile(b)
				return len(x) > 0 && bytes.Equal(x, y)
			}
			if !same(hc.KeyFile, srcKey) || !same(hc.CertFile, srcCrt) {
				t.Error("staged copies differ from the sources")
			}
			if got := res.Files(); len(got) != 2 || got[0] != min(srcCrt, srcKey) {
				t.Errorf("Files() = %v, want the sources", got)
			}
			// The source is untouched: still root-owned and private.
			if u, _, m := ownerMode(t, srcKey); u != 0 || (m != 0o600 && m != 0o644) {
				t.Errorf("source key changed: owner %d mode %#o", u, m)
			}
		})
	}
}

func TestReadableKeyIsNotStaged(t *testing.T) {
	requireRoot(t)
	uid, gid := prosodytest.IDs(t)
	ca := newCA(t)
	dir := searchableTempDir(t)
	c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
	writeFile(t, dir, "example.com.crt", c, 0o644)
	key := writeFile(t, dir, "example.com.key", k, 0o640)
	if err := os.Chown(key, 0, gid); err != nil { // root:prosody 0640, what `prosodyctl cert import` leaves
		t.Fatal(err)
	}
	opts := baseOptions(dir, "example.com")
	opts.RuntimeDir, opts.UID, opts.GID = t.TempDir(), uid, gid
	res, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	if hc := res.Hosts[0]; hc.Source != SourceDiscovered || hc.KeyFile != key {
		t.Errorf("got %s %s, want the group-readable key used in place", hc.Source, hc.KeyFile)
	}
}

// searchableTempDir is a t.TempDir that the prosody user may enter (the
// test's parent temp dir is 0700), so that only the modes a test sets
// stand in its way.
func searchableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// nonRootHelperEnv makes this test binary run one Prepare as the prosody
// user and print its error: the only way to show the non-root path for real.
const nonRootHelperEnv = "TLSCERTS_NONROOT_HELPER_DIR"

func TestNonRootUnreadableKeyIsAClearError(t *testing.T) {
	if dir := os.Getenv(nonRootHelperEnv); dir != "" {
		_, err := Prepare(Options{Dir: dir, Hosts: []string{"example.com"}, UID: -1, GID: -1, RuntimeDir: dir})
		var perr *Error
		if !errors.As(err, &perr) {
			t.Fatalf("as uid %d: err = %v, want *Error", os.Geteuid(), err)
		}
		os.Stdout.WriteString("RESULT " + perr.Error() + "\n")
		return
	}
	requireRoot(t)
	uid, gid := prosodytest.IDs(t)
	ca := newCA(t)
	work := searchableTempDir(t)
	dir := filepath.Join(work, "certs")
	c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
	writeFile(t, dir, "example.com.crt", c, 0o644)
	key := writeFile(t, dir, "example.com.key", k, 0o600) // root-only
	bin := filepath.Join(work, "tlscerts.test")
	self, _ := os.ReadFile(os.Args[0])
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestNonRootUnreadableKeyIsAClearError$", "-test.count=1")
	cmd.Env = append(os.Environ(), nonRootHelperEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as prosody: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{key, string(ReasonKeyNotReadable), "chmod 0640", "as root"} {
		if !strings.Contains(got, want) {
			t.Errorf("non-root error lacks %q:\n%s", want, got)
		}
	}
}

func TestGeneratedCertificateReusedAndRegenerated(t *testing.T) {
	requireRoot(t)
	uid, gid := prosodytest.IDs(t)
	data := t.TempDir()
	now := testNow
	opts := Options{Dir: filepath.Join(data, "no-such-dir"), Hosts: []string{"example.com", "conference.example.com"}, DataDir: data,
		UID: uid, GID: gid, Generate: true, Now: func() time.Time { return now }}

	first, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(data, "certs/selfsigned.crt"), filepath.Join(data, "certs/selfsigned.key")
	for _, hc := range first.Hosts {
		if hc.Source != SourceGenerated || !hc.SelfSigned || hc.CertFile != crt || hc.KeyFile != key {
			t.Fatalf("%s: %+v, want the generated pair", hc.Host, hc)
		}
		if err := Validate(hc.CertFile, hc.KeyFile, hc.Host, now); err != nil {
			t.Errorf("generated pair invalid for %s: %v", hc.Host, err)
		}
	}
	if u, g, m := ownerMode(t, key); u != uid || g != gid || m != 0o600 {
		t.Errorf("generated key owner %d:%d mode %#o, want %d:%d 0600", u, g, m, uid, gid)
	}
	if len(first.Files()) != 0 {
		t.Errorf("Files() = %v, want none for a generated certificate", first.Files())
	}
	chain, _ := loadChain(crt)
	if pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("generated key is %s, want ECDSA P-256", chain[0].PublicKeyAlgorithm)
	}
	if got := chain[0].NotAfter.Sub(now); got < 364*24*time.Hour {
		t.Errorf("generated certificate valid for %v, want about a year", got)
	}

	// A restart a month later: same certificate, so pinned clients keep working.
	now = testNow.AddDate(0, 1, 0)
	second, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.Hosts[0].Fingerprint != first.Hosts[0].Fingerprint {
		t.Errorf("fingerprint changed across restarts: %s -> %s", first.Hosts[0].Fingerprint, second.Hosts[0].Fingerprint)
	}

	// A new host: regenerated to cover it.
	opts.Hosts = append(opts.Hosts, "upload.example.com")
	third, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	if third.Hosts[0].Fingerprint == first.Hosts[0].Fingerprint {
		t.Error("certificate not regenerated when a host was added")
	}
	if err := Validate(crt, key, "upload.example.com", now); err != nil {
		t.Errorf("regenerated certificate does not cover the new host: %v", err)
	}

	// Close to expiry: regenerated.
	now = third.Hosts[0].NotAfter.Add(-10 * 24 * time.Hour)
	fourth, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	if fourth.Hosts[0].Fingerprint == third.Hosts[0].Fingerprint {
		t.Error("certificate not regenerated within 30 days of its expiry")
	}
}

func TestGenerationOnlyForUncoveredHosts(t *testing.T) {
	ca := newCA(t)
	dir, data := t.TempDir(), t.TempDir()
	c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
	writeFile(t, dir, "example.com.crt", c, 0o644)
	writeFile(t, dir, "example.com.key", k, 0o600)
	opts := baseOptions(dir, "example.com", "conference.example.com")
	opts.DataDir = data

	_, err := Prepare(opts)
	var perr *Error
	if !errors.As(err, &perr) || !perr.Has(ReasonNoCertificate) {
		t.Fatalf("production without generation: err = %v, want no certificate", err)
	}
	if !strings.Contains(err.Error(), "PROSODY_TLS_ALLOW_SELF_SIGNED") {
		t.Errorf("error does not name the setting that allows self-signed: %v", err)
	}

	for _, allow := range []func(*Options){func(o *Options) { o.Generate = true }, func(o *Options) { o.AllowSelfSigned = true }} {
		o := opts
		allow(&o)
		res, err := Prepare(o)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := res.Hosts[0], res.Hosts[1]; a.Source != SourceDiscovered || b.Source != SourceGenerated {
			t.Errorf("sources %s, %s; want discovered for the covered host and generated for the other", a.Source, b.Source)
		}
		if got := res.Files(); len(got) != 2 {
			t.Errorf("Files() = %v, want the discovered pair only", got)
		}
	}
}

// TestGeneratedPairLinkAttackAsProsody: the prosody user owns the data
// directory, so it can replace the generated key by a link to a root file
// holding the same key (a key it wants chowned), or the certs directory by
// a link to a root directory. The old code re-owned both through the links.
// Prepare must refuse, say why, and leave the root files as they were.
func TestGeneratedPairLinkAttackAsProsody(t *testing.T) {
	requireRoot(t)
	uid, gid := prosodytest.IDs(t)
	root := searchableTempDir(t)
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	opts := Options{Dir: filepath.Join(root, "no-such-dir"), Hosts: []string{"example.com"}, DataDir: data,
		UID: uid, GID: gid, Generate: true, Now: func() time.Time { return testNow }}
	if _, err := Prepare(opts); err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(data, "certs")
	keyBytes, err := os.ReadFile(filepath.Join(certs, "selfsigned.key"))
	if err != nil {
		t.Fatal(err)
	}
	vault := filepath.Join(root, "vault")
	if err := os.Mkdir(vault, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := writeFile(t, vault, "root.key", keyBytes, 0o600)
	check := func(step string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "refusing to follow symbolic link") {
			t.Errorf("%s: Prepare err = %v, want a refusal to follow the link", step, err)
		}
		if u, g, m := ownerMode(t, victim); u != 0 || g != 0 || m != 0o600 {
			t.Errorf("%s: root key is now %d:%d %#o", step, u, g, m)
		}
		if b, _ := os.ReadFile(victim); !bytes.Equal(b, keyBytes) {
			t.Errorf("%s: root key bytes changed", step)
		}
		if u, _, m := ownerMode(t, vault); u != 0 || m != 0o700 {
			t.Errorf("%s: root directory is now owned by %d, mode %#o", step, u, m)
		}
	}
	prosodytest.AsProsody(t, "rm", filepath.Join(certs, "selfsigned.key"))
	prosodytest.AsProsody(t, "ln", "-s", victim, filepath.Join(certs, "selfsigned.key"))
	_, err = Prepare(opts)
	check("key link", err)

	prosodytest.AsProsody(t, "rm", "-r", certs)
	prosodytest.AsProsody(t, "ln", "-s", vault, certs)
	_, err = Prepare(opts)
	check("certs directory link", err)
}
