package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The operations tests: admin bootstrap, init hooks, backup/restore and
// storage migration, each with real Prosody 13 and a real client
// (clients/ops_client.py, Debian python3-slixmpp).

const opsPython = "/usr/bin/python3" // Debian's, which has python3-slixmpp

// opsClient runs clients/ops_client.py against s and decodes its JSON.
func opsClient(t *testing.T, s *Server, out any, args ...string) {
	t.Helper()
	if _, err := os.Stat(opsPython); err != nil {
		t.Fatalf("%s not found: install the Debian packages python3 and python3-slixmpp", opsPython)
	}
	ca := filepath.Join(s.Dir, "data", "certs", "selfsigned.crt")
	argv := append([]string{filepath.Join(repoRoot, "test", "e2e", "clients", "ops_client.py"),
		"--port", strconv.Itoa(s.C2S), "--ca", ca, "--timeout", "20"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, opsPython, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var probe struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(stdout.Bytes(), &probe)
	if err != nil || probe.Error != "" {
		t.Fatalf("ops_client %v: %v %s\nstdout: %s\nstderr: %s", args, err, probe.Error, stdout.String(), tail(stderr.String(), 2000))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("ops_client %v: decode %q: %v", args, stdout.String(), err)
	}
}

// login reports whether jid can log in with password.
func opsLogin(t *testing.T, s *Server, jid, password string) bool {
	t.Helper()
	var r struct {
		OK bool `json:"ok"`
	}
	opsClient(t, s, &r, "login", jid, password)
	return r.OK
}

// opsAccount is what a user sees of its data.
type opsAccount struct {
	Roster  []string `json:"roster"`
	Archive []string `json:"archive"`
}

func opsCheck(t *testing.T, s *Server, jid, password string) opsAccount {
	t.Helper()
	var st opsAccount
	opsClient(t, s, &st, "check", jid, password)
	return st
}

// populate gives alice a roster entry for bob and n archived messages to him.
func opsPopulate(t *testing.T, s *Server, pw string, n int) opsAccount {
	t.Helper()
	var r struct{ Sent, Received int }
	opsClient(t, s, &r, "populate", "alice@localhost", pw, "bob@localhost", pw, strconv.Itoa(n))
	if r.Received != n {
		t.Fatalf("bob received %d of %d messages", r.Received, n)
	}
	want := opsCheck(t, s, "alice@localhost", pw)
	if !slices.Equal(want.Roster, []string{"bob@localhost"}) || len(want.Archive) != n {
		t.Fatalf("before: alice sees %+v; want bob in the roster and %d archived messages", want, n)
	}
	return want
}

// waitAccounts waits until the bootstrap logged n created accounts.
func opsWaitAccounts(s *Server, n int) {
	s.WaitFor(30*time.Second, "admin accounts created", func() bool {
		return strings.Count(s.Stderr(), "admin account created") >= n
	})
}

// runVerb runs `entrypoint ARGS` with s's environment and returns stdout,
// stderr and the exit code.
func opsRunVerb(t *testing.T, s *Server, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, entrypointBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range s.Env {
		if _, over := env[k]; !over {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return stdout.String(), stderr.String(), code
}

// PROSODY_ADMIN_PASSWORD_FILE creates the admin once; a restart with another
// password leaves the account's password alone.
func TestAdminBootstrapCreatesOnceNeverOverwrites(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "admin_password")
	if err := os.WriteFile(pwFile, []byte("first-Secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, Options{Env: map[string]string{
		"PROSODY_ADMINS": "admin@localhost", "PROSODY_ADMIN_PASSWORD_FILE": pwFile,
	}}).Start()
	s.WaitReady(20 * time.Second)
	opsWaitAccounts(s, 1)
	if !opsLogin(t, s, "admin@localhost", "first-Secret-1") {
		t.Fatal("the admin cannot log in with the password from PROSODY_ADMIN_PASSWORD_FILE")
	}
	if code := s.Stop(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	s2 := NewServer(t, Options{Dir: s.Dir, Env: map[string]string{
		"PROSODY_ADMINS": "admin@localhost", "PROSODY_ADMIN_PASSWORD": "second-Secret-2",
	}}).Start()
	s2.WaitReady(20 * time.Second)
	s2.WaitFor(30*time.Second, "the bootstrap to find the account", func() bool {
		return strings.Contains(s2.Stderr(), "admin account exists; password left as it is")
	})
	if strings.Contains(s2.Stderr(), "admin account created") {
		t.Error("the restart created the admin account again")
	}
	if !opsLogin(t, s2, "admin@localhost", "first-Secret-1") {
		t.Error("the original password no longer works after a restart with another PROSODY_ADMIN_PASSWORD")
	}
	if opsLogin(t, s2, "admin@localhost", "second-Secret-2") {
		t.Error("the restart overwrote the admin's password")
	}
	for _, log := range []string{s.Stderr(), s2.Stderr(), s.Stdout(), s2.Stdout()} {
		if strings.Contains(log, "first-Secret-1") || strings.Contains(log, "second-Secret-2") {
			t.Fatal("a log contains the admin password")
		}
	}
}

// statusStages returns the stage names /status reports, in order.
func opsStatusStages(t *testing.T, s *Server) []string {
	t.Helper()
	_, body, err := s.Get("/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Stages []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"stages"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode /status: %v", err)
	}
	var names []string
	for _, s := range st.Stages {
		names = append(names, s.Name)
	}
	return names
}

// Hooks run in lexical order as named stages before Prosody, without secret
// values; a non-executable *.sh runs with sh; other files are skipped; a
// failing hook stops start-up with exit 78, naming the hook and its code.
func TestInitHooksRunInOrderAndAFailureStopsStartup(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Env: map[string]string{"PROSODY_ADMIN_PASSWORD": "hook-must-not-see-this"}})
	hooks := filepath.Join(s.Dir, "hooks")
	trace := filepath.Join(s.Dir, "trace")
	write := func(name, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(hooks, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("20-second.sh", "echo second >> "+trace+"\n", 0o644)
	write("10-first", "#!/bin/sh\necho \"first ${PROSODY_DOMAIN} pw=${PROSODY_ADMIN_PASSWORD}\" >> "+trace+"\n", 0o755)
	write("README.md", "not a hook\n", 0o644)
	s.Start()
	s.WaitReady(20 * time.Second)
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "first localhost pw=\nsecond\n" {
		t.Fatalf("hooks wrote %q; want 10-first (without the password) then 20-second.sh", got)
	}
	stages := opsStatusStages(t, s)
	i, j, k := slices.Index(stages, "check"), slices.Index(stages, "hook/10-first"), slices.Index(stages, "hook/20-second.sh")
	if i < 0 || j != i+1 || k != j+1 || slices.Contains(stages, "hook/README.md") {
		t.Fatalf("/status stages %v; want check, hook/10-first, hook/20-second.sh", stages)
	}
	if !s.Logged("init hook skipped") {
		t.Error("the skipped README.md is not logged")
	}

	f := NewServer(t, Options{})
	fh := filepath.Join(f.Dir, "hooks")
	ftrace := filepath.Join(f.Dir, "trace")
	os.WriteFile(filepath.Join(fh, "10-ok"), []byte("#!/bin/sh\necho ok >> "+ftrace+"\n"), 0o755)
	os.WriteFile(filepath.Join(fh, "20-fail"), []byte("#!/bin/sh\necho failing >&2\nexit 3\n"), 0o755)
	os.WriteFile(filepath.Join(fh, "30-never"), []byte("#!/bin/sh\necho never >> "+ftrace+"\n"), 0o755)
	f.Start()
	code, ok := f.Wait(30 * time.Second)
	if !ok || code != 78 {
		t.Fatalf("exit code %d (exited: %v), want 78", code, ok)
	}
	if errs := f.Stderr(); !strings.Contains(errs, "20-fail") || !strings.Contains(errs, "exit code 3") {
		t.Errorf("stderr does not name the hook and its exit code:\n%s", tail(errs, 2000))
	}
	if b, _ := os.ReadFile(ftrace); string(b) != "ok\n" {
		t.Errorf("hooks wrote %q; want only 10-ok's line", b)
	}
	if strings.Contains(f.Stderr(), `"child started"`) || strings.Contains(f.Stdout(), "Hello and welcome") {
		t.Error("prosody started after a failing hook")
	}
}

// opsAccountsEnv creates admin, alice and bob through the admin bootstrap.
func opsAccountsEnv(extra map[string]string, pw string) map[string]string {
	env := map[string]string{
		"PROSODY_ADMINS":         "admin@localhost,alice@localhost,bob@localhost",
		"PROSODY_ADMIN_PASSWORD": pw,
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// opsExpectSame checks that alice and bob still have their accounts, roster
// and archive (no account may come from the bootstrap: it is off here).
func opsExpectSame(t *testing.T, s *Server, pw string, want opsAccount, stage string) {
	t.Helper()
	for _, jid := range []string{"admin@localhost", "bob@localhost"} {
		if !opsLogin(t, s, jid, pw) {
			t.Fatalf("%s: %s cannot log in", stage, jid)
		}
	}
	got := opsCheck(t, s, "alice@localhost", pw)
	if !slices.Equal(got.Roster, want.Roster) || !slices.Equal(got.Archive, want.Archive) {
		t.Fatalf("%s: alice sees %+v, want %+v", stage, got, want)
	}
}

// A backup taken while Prosody runs, then a wiped data directory restored
// from it, keeps every account, roster entry and archived message.
func TestBackupWipeRestoreKeepsAccountsRosterArchive(t *testing.T) {
	t.Parallel()
	const pw = "round-Trip-pw-7"
	s := NewServer(t, Options{Env: opsAccountsEnv(nil, pw)}).Start()
	s.WaitReady(20 * time.Second)
	opsWaitAccounts(s, 3)
	want := opsPopulate(t, s, pw, 5)

	archive := filepath.Join(t.TempDir(), "prosody-backup.tar.gz")
	if _, errOut, code := opsRunVerb(t, s, nil, "backup", "--out", archive); code != 0 {
		t.Fatalf("backup exit %d:\n%s", code, errOut)
	}
	if out, errOut, code := opsRunVerb(t, s, nil, "restore", "--verify", archive); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("restore --verify exit %d: %s %s", code, out, errOut)
	}
	if _, errOut, code := opsRunVerb(t, s, nil, "restore", archive); code == 0 || !strings.Contains(errOut, "stop the server first") {
		t.Fatalf("restore while running: exit %d, stderr %s; want a refusal", code, errOut)
	}
	if code := s.Stop(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	data := filepath.Join(s.Dir, "data")
	entries, _ := os.ReadDir(data)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(data, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := opsRunVerb(t, s, nil, "restore", archive)
	if code != 0 {
		t.Fatalf("restore exit %d: %s %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, pw) {
		t.Fatal("the restore output contains the password")
	}

	// Restart without PROSODY_ADMIN_PASSWORD: every account must come from the archive.
	r := NewServer(t, Options{Dir: s.Dir, Env: opsAccountsEnv(map[string]string{"PROSODY_ADMIN_PASSWORD": ""}, "")}).Start()
	r.WaitReady(20 * time.Second)
	opsExpectSame(t, r, pw, want, "after restore")
}

// opsPostgres starts a private PostgreSQL cluster on 127.0.0.1 with a role
// and database "prosody"; Cleanup stops it. It returns the port.
func opsPostgres(t *testing.T) int {
	t.Helper()
	bin := "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		t.Fatalf("PostgreSQL 15 not found in %s: install the Debian package postgresql", bin)
	}
	dir := filepath.Join(t.TempDir(), "pg")
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o755)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, 10*time.Second, "chown", "postgres:postgres", dir); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	port := freePort(t)
	as := func(d time.Duration, args ...string) {
		t.Helper()
		if out, err := runCmd(t, d, "runuser", append([]string{"-u", "postgres", "--"}, args...)...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	as(60*time.Second, filepath.Join(bin, "initdb"), "-D", dir, "-U", "postgres", "--auth=trust")
	as(30*time.Second, filepath.Join(bin, "pg_ctl"), "-D", dir, "-l", filepath.Join(dir, "log"), "-w",
		"-o", "-k "+dir+" -p "+strconv.Itoa(port)+" -h 127.0.0.1", "start")
	t.Cleanup(func() {
		runCmd(t, 30*time.Second, "runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "-D", dir, "-m", "fast", "-w", "stop")
	})
	psql := func(sql string) {
		as(10*time.Second, "psql", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql)
	}
	psql("CREATE ROLE prosody LOGIN PASSWORD 'pg-Secret-9'")
	psql("CREATE DATABASE prosody OWNER prosody")
	return port
}

// Changing PROSODY_STORAGE internal -> sqlite -> postgres on the same data
// volume migrates every account, roster entry and archived message, records
// each run and keeps the sources.
func TestStorageMigrationInternalSQLitePostgres(t *testing.T) {
	t.Parallel()
	pgPort := opsPostgres(t)
	const pw = "migrate-pw-3"
	s := NewServer(t, Options{Env: opsAccountsEnv(map[string]string{"PROSODY_STORAGE": "internal"}, pw)}).Start()
	s.WaitReady(20 * time.Second)
	opsWaitAccounts(s, 3)
	want := opsPopulate(t, s, pw, 4)
	if code := s.Stop(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	data := filepath.Join(s.Dir, "data")

	record := func() (rec struct {
		Current    string `json:"current"`
		Migrations []struct {
			From, To, Result string
		} `json:"migrations"`
	}) {
		b, err := os.ReadFile(filepath.Join(data, "migrations.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	noBootstrap := map[string]string{"PROSODY_ADMIN_PASSWORD": ""}

	env := opsAccountsEnv(noBootstrap, "")
	env["PROSODY_STORAGE"] = "sqlite"
	q := NewServer(t, Options{Dir: s.Dir, Env: env}).Start()
	q.WaitReady(30 * time.Second)
	opsExpectSame(t, q, pw, want, "internal -> sqlite")
	if code := q.Stop(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if rec := record(); rec.Current != "sqlite" || len(rec.Migrations) != 1 || rec.Migrations[0].From != "internal" || rec.Migrations[0].Result != "ok" {
		t.Fatalf("migrations.json after the first change: %+v", rec)
	}
	if _, err := os.Stat(filepath.Join(data, "localhost", "accounts", "alice.dat")); err != nil {
		t.Errorf("the internal source was not kept: %v", err)
	}
	// prosody-migrator wrote the database: private all the same.
	if fi, err := os.Stat(filepath.Join(data, "prosody.sqlite")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("prosody.sqlite after the migration is %v; want mode 0600", fi.Mode().Perm())
	}

	env = opsAccountsEnv(noBootstrap, "")
	for k, v := range map[string]string{"PROSODY_STORAGE": "postgres", "PROSODY_DB_HOST": "127.0.0.1",
		"PROSODY_DB_PORT": strconv.Itoa(pgPort), "PROSODY_DB_NAME": "prosody", "PROSODY_DB_USER": "prosody",
		"PROSODY_DB_PASSWORD": "pg-Secret-9"} {
		env[k] = v
	}
	p := NewServer(t, Options{Dir: s.Dir, Env: env}).Start()
	p.WaitReady(30 * time.Second)
	opsExpectSame(t, p, pw, want, "sqlite -> postgres")
	if rec := record(); rec.Current != "postgres" || len(rec.Migrations) != 2 || rec.Migrations[1].From != "sqlite" || rec.Migrations[1].Result != "ok" {
		t.Fatalf("migrations.json after the second change: %+v", rec)
	}
	if _, err := os.Stat(filepath.Join(data, "prosody.sqlite")); err != nil {
		t.Errorf("the sqlite source was not kept: %v", err)
	}
	// Only the entrypoint's log: Prosody's own debug log (development) prints
	// mod_storage_sql's connection string, password included ("Creating new engine").
	for _, line := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(line, "pg-Secret-9") {
			t.Errorf("a log contains the database password: %.300s", line)
		}
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "runtime", "migrator.cfg.lua")); !os.IsNotExist(err) {
		t.Errorf("the migrator config (with the database password) was left behind: %v", err)
	}
}

// A community module not shipped in the image: PROSODY_PLUGIN_DIR makes it
// visible to Prosody and PROSODY_EXTRA_MODULES loads it; a module that is in
// no module directory is refused before Prosody starts (exit 78, named).
func TestPluginDirAndExtraModules(t *testing.T) {
	t.Parallel()
	plugins := t.TempDir()
	os.Chmod(filepath.Dir(plugins), 0o755)
	os.Chmod(plugins, 0o755)
	module := `module:log("info", "pfe test plugin loaded on %s", module.host)` + "\n"
	if err := os.WriteFile(filepath.Join(plugins, "mod_pfe_test_plugin.lua"), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, Options{Profile: "minimal", Env: map[string]string{
		"PROSODY_PLUGIN_DIR": plugins, "PROSODY_EXTRA_MODULES": "pfe_test_plugin",
	}}).Start()
	s.WaitReady(20 * time.Second)
	s.WaitFor(10*time.Second, "the plugin's log line", func() bool {
		return strings.Contains(s.Stdout(), "pfe test plugin loaded")
	})

	missing := NewServer(t, Options{Profile: "minimal", Env: map[string]string{
		"PROSODY_EXTRA_MODULES": "pfe_no_such_module",
	}}).Start()
	code, ok := missing.Wait(20 * time.Second)
	if !ok || code != 78 {
		t.Fatalf("a missing extra module: exit %d (exited %v), want 78", code, ok)
	}
	if !strings.Contains(missing.Stderr(), "mod_pfe_no_such_module") {
		t.Fatalf("the refusal does not name the module:\n%s", missing.Stderr())
	}
	if missing.Stdout() != "" {
		t.Fatalf("prosody ran with a missing module")
	}
}
