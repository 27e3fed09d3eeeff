package settings

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const v = "hunter2-very-secret"
	s := NewSecret(v)
	type wrapper struct {
		Password Secret
	}
	w := wrapper{s}
	js, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		s.String(), s.GoString(), string(js),
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %d", s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", w, w, w), fmt.Sprintf("%+v", &w),
	}
	for _, o := range outputs {
		if strings.Contains(o, v) || strings.Contains(o, fmt.Sprintf("%x", v)) {
			t.Errorf("secret printed: %s", o)
		}
		if !strings.Contains(o, redacted) && !strings.Contains(o, `\u003credacted\u003e`) {
			t.Errorf("no redaction marker in %q", o)
		}
	}
	if s.Reveal() != v || !s.IsSet() {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
	if NewSecret("").String() != "" || NewSecret("").IsSet() {
		t.Errorf("empty secret should show empty")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ content, want string }{
		{"plain", "plain"},
		{"with-newline\n", "with-newline"},
		{"crlf\r\n", "crlf"},
		{"  spaces kept  \n", "  spaces kept  "},
	}
	for i, c := range cases {
		p := writeFile(t, dir, fmt.Sprintf("pw%d", i), c.content)
		s, _ := mustLoad(t, "PROSODY_DB_PASSWORD_FILE="+p, "PROSODY_ADMIN_PASSWORD_FILE="+p)
		if s.DBPassword.Reveal() != c.want || s.AdminPassword.Reveal() != c.want {
			t.Errorf("file %q: got %q", c.content, s.DBPassword.Reveal())
		}
		if s.Source("PROSODY_DB_PASSWORD") != SourceFile {
			t.Errorf("source = %q, want file", s.Source("PROSODY_DB_PASSWORD"))
		}
	}
	// postgres is satisfied by a password from a file
	p := writeFile(t, dir, "db", "s3cret\n")
	mustLoad(t, "PROSODY_STORAGE=postgres", "PROSODY_DB_HOST=db", "PROSODY_DB_PASSWORD_FILE="+p)
}

func TestSecretFileProblems(t *testing.T) {
	dir := t.TempDir()
	const secret = "file-secret-value"
	p := writeFile(t, dir, "pw", secret)
	missing := filepath.Join(dir, "missing")

	ps := problemsOf(t, "PROSODY_DB_PASSWORD=env-secret-value", "PROSODY_DB_PASSWORD_FILE="+p)
	if len(ps) != 1 || ps[0].Var != "PROSODY_DB_PASSWORD" || !strings.Contains(ps[0].Msg, "set together with PROSODY_DB_PASSWORD_FILE") {
		t.Errorf("both set: %v", &Problems{List: ps})
	}
	ps = problemsOf(t, "PROSODY_ADMIN_PASSWORD_FILE="+missing)
	if len(ps) != 1 || ps[0].Var != "PROSODY_ADMIN_PASSWORD_FILE" || !strings.Contains(ps[0].String(), missing) ||
		!strings.Contains(ps[0].Msg, "no such file") {
		t.Errorf("missing file: %v", &Problems{List: ps})
	}
	ps = problemsOf(t, "PROSODY_DB_PASSWORD_FILE=")
	if len(ps) != 1 || !strings.Contains(ps[0].Msg, "set but empty") {
		t.Errorf("empty path: %v", &Problems{List: ps})
	}
	ps = problemsOf(t, "PROSODY_DB_PASSWORD_FILE="+dir)
	if len(ps) != 1 || !strings.Contains(ps[0].String(), dir) {
		t.Errorf("directory as file: %v", &Problems{List: ps})
	}
	// a problem elsewhere never shows the secret read from a file
	_, _, err := Load([]string{"PROSODY_DB_PASSWORD_FILE=" + p, "PROSODY_STORAGE=" + secret, "PROSODY_DB_PASS=x"})
	if err == nil || strings.Count(err.Error(), secret) != 1 { // only the bad storage value itself
		t.Errorf("unexpected error text: %v", err)
	}
}

func TestEnsureGenerated(t *testing.T) {
	dir := t.TempDir()
	got, err := EnsureGenerated(dir, "component_secret", "upload_secret")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["component_secret"] == got["upload_secret"] {
		t.Fatalf("got %v", len(got))
	}
	for name, v := range got {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(raw) != 32 {
			t.Errorf("%s: not 32 bytes base64url: %d %v", name, len(raw), err)
		}
		fi, err := os.Stat(filepath.Join(dir, "secrets", name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	di, err := os.Stat(filepath.Join(dir, "secrets"))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("secrets dir mode %v %v", di.Mode().Perm(), err)
	}
	// a restart keeps them; a new name is added
	again, err := EnsureGenerated(dir, "upload_secret", "component_secret", "turn_secret")
	if err != nil {
		t.Fatal(err)
	}
	if again["component_secret"] != got["component_secret"] || again["upload_secret"] != got["upload_secret"] || again["turn_secret"] == "" {
		t.Errorf("secrets changed across calls")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "secrets"))
	if len(entries) != 3 {
		t.Errorf("secrets dir has %d entries, want 3 (no temp files left)", len(entries))
	}
	// an operator-provided file with a trailing newline is used as is
	writeFile(t, filepath.Join(dir, "secrets"), "mine", "chosen\n")
	if m, err := EnsureGenerated(dir, "mine"); err != nil || m["mine"] != "chosen" {
		t.Errorf("operator file: %q %v", m["mine"], err)
	}
}

func TestEnsureGeneratedErrors(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{"", "../etc/passwd", "Upper", "a/b"} {
		if _, err := EnsureGenerated(dir, bad); err == nil || !strings.Contains(err.Error(), "[a-z0-9_]+") {
			t.Errorf("name %q: err %v", bad, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, filepath.Join(dir, "secrets"), "empty", "")
	if _, err := EnsureGenerated(dir, "empty"); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("empty file: %v", err)
	}
	notDir := writeFile(t, dir, "file", "x")
	if _, err := EnsureGenerated(notDir, "x"); err == nil || !strings.Contains(err.Error(), notDir) {
		t.Errorf("data dir is a file: %v", err)
	}
}

// TestEnsureGeneratedConcurrent: callers racing on first start all get the same value.
func TestEnsureGeneratedConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	results := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := EnsureGenerated(dir, "component_secret")
			results[i], errs[i] = m["component_secret"], err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i] != results[0] || results[i] == "" {
			t.Fatalf("caller %d: %q %v (first %q)", i, results[i], errs[i], results[0])
		}
	}
}

func TestSecretVarsIncludesDeprecatedNames(t *testing.T) {
	got := strings.Join(SecretVars(), ",")
	for _, want := range []string{"PROSODY_ADMIN_PASSWORD", "PROSODY_DB_PASSWORD", "PROSODY_DB_PASS"} {
		if !strings.Contains(","+got+",", ","+want+",") {
			t.Errorf("SecretVars() = %s, lacks %s", got, want)
		}
	}
	if strings.Contains(got, "_FILE") || strings.Contains(got, "PROSODY_DOMAIN") {
		t.Errorf("SecretVars() = %s lists a non-secret", got)
	}
}

// TestSecretFileRefusals: several lines (Prosody would refuse the password
// and the admin would silently not be created), an empty file, and a FIFO
// (which blocked Load forever) are settings errors naming the variable.
func TestSecretFileRefusals(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		writeFile(t, dir, "lines", "one\ntwo\n"):       "holds 2 lines",
		writeFile(t, dir, "blank", "two-newlines\n\n"): "holds 2 lines",
		writeFile(t, dir, "empty", ""):                 "is empty",
		writeFile(t, dir, "newline", "\n"):             "is empty",
		fifo:                                           "named pipe (FIFO), not a regular file",
	} {
		_, _, err := Load([]string{"PROSODY_ADMIN_PASSWORD_FILE=" + path})
		if err == nil || !strings.Contains(err.Error(), "PROSODY_ADMIN_PASSWORD_FILE") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want PROSODY_ADMIN_PASSWORD_FILE and %q", filepath.Base(path), err, want)
		}
	}
}

// TestGeneratedSecretLinkAttackAsProsody: the prosody user owns
// $DATA/secrets and replaces upload_secret by a link to a root-only file;
// the old code read it (and copied it where Prosody reads credentials).
func TestGeneratedSecretLinkAttackAsProsody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it checks what a root entrypoint reads in prosody's directories")
	}
	u, err := user.Lookup("prosody")
	if err != nil {
		t.Fatalf("look up the prosody user (install prosody): %v", err)
	}
	root := t.TempDir()
	vault := filepath.Join(root, "vault")
	if err := os.Mkdir(vault, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := writeFile(t, vault, "rootfile", "root only")
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(filepath.Join(data, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range []string{data, filepath.Join(data, "secrets")} {
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(data, "secrets", "upload_secret")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, uid, gid); err != nil { // planted by prosody
		t.Fatal(err)
	}
	got, err := EnsureGenerated(data, "upload_secret")
	if err == nil || !strings.Contains(err.Error(), "refusing to follow symbolic link") {
		t.Errorf("EnsureGenerated = %v, %v; want a refusal to follow the link", got, err)
	}
	if err != nil && strings.Contains(err.Error(), "root only") {
		t.Errorf("the error shows the file's content: %v", err)
	}
	fi, _ := os.Stat(victim)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("victim is now %d %v", st.Uid, fi.Mode().Perm())
	}
}
