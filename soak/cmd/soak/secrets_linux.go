package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// marker is a unique, greppable fake secret.
func marker(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// soakSecrets: secret markers must show up nowhere, and secret files keep their
// modes; see about["secrets"].
func soakSecrets(r *runner, sc scenario, res *result) error {
	dbpw, adminpw, token := marker("soakDBPW"), marker("soakADMINPW"), marker("soakSTATUSTOKEN")
	s, err := r.startReady(serverConfig{Env: map[string]string{
		"PROSODY_DB_PASSWORD":    dbpw,
		"PROSODY_ADMIN_PASSWORD": adminpw,
		"PROSODY_STATUS_TOKEN":   token,
		"PROSODY_ADMINS":         "admin@localhost",
		"PROSODY_LOG_LEVEL":      "debug",
	}}, 60*time.Second)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_, _ = s.stop(15 * time.Second)
		}
	}()
	// The admin password is really in use: the bootstrapped admin logs in with it.
	var failed []string
	err = s.poll(30*time.Second, 200*time.Millisecond, "the bootstrapped admin to log in", func() bool {
		failed, err = logins(r.clients, s.c2s, s.ca(), []account{{"admin@localhost", adminpw}}, 30*time.Second)
		return err == nil && len(failed) == 0
	})
	res.figure("admin logs in with PROSODY_ADMIN_PASSWORD", fmt.Sprint(err == nil), "true", err == nil)
	// A reload (SIGHUP to the entrypoint) exercises the reload's logging too.
	if st, _, err := s.status(); err == nil {
		prev := time.Time{}
		if st.LastReload != nil {
			prev = st.LastReload.At
		}
		_ = s.cmd.Process.Signal(syscall.SIGHUP)
		if err := s.poll(20*time.Second, 20*time.Millisecond, "the SIGHUP reload", func() bool {
			st, _, err := s.status()
			return err == nil && st.LastReload != nil && st.LastReload.At.After(prev)
		}); err != nil {
			res.problem("%v", err)
		}
	}

	// Every secret the server holds: the two markers and the generated ones.
	secrets := map[string]string{"PROSODY_DB_PASSWORD": dbpw, "PROSODY_ADMIN_PASSWORD": adminpw, "PROSODY_STATUS_TOKEN": token}
	genDir := filepath.Join(s.dir, "data", "secrets")
	if ents, err := os.ReadDir(genDir); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join(genDir, e.Name())); err == nil && len(bytes.TrimSpace(b)) >= 8 {
				secrets["generated "+e.Name()] = string(bytes.TrimSpace(b))
			}
		}
	}

	places := map[string][]byte{}
	_, status, err := s.status()
	if err != nil {
		return err
	}
	places["/status"] = status
	if _, page, err := s.metric("go_goroutines"); err == nil {
		places["/metrics"] = page
	} else {
		return err
	}
	envCmd := exec.Command(r.opt.Entrypoint, "env")
	envCmd.Env = s.environ()
	envOut, err := envCmd.CombinedOutput()
	if err != nil {
		res.problem("entrypoint env: %v: %s", err, envOut)
	}
	places["entrypoint env"] = envOut
	code, err := s.stop(15 * time.Second)
	stopped = true
	if err != nil || (code != 0 && code != 143) {
		res.problem("stop: code %d, %v", code, err)
	}
	places["entrypoint stderr"] = []byte(s.Stderr())
	places["prosody stdout"] = []byte(s.Stdout())
	// Every file of the runtime directory except the credential files that exist
	// to hold a secret, and the database (passwords must be stored hashed).
	credDir := filepath.Join(s.dir, "runtime", "credentials")
	_ = filepath.WalkDir(filepath.Join(s.dir, "runtime"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Dir(p) != credDir {
			if b, err := os.ReadFile(p); err == nil {
				places[strings.TrimPrefix(p, s.dir+"/")] = b
			}
		}
		return nil
	})
	if b, err := os.ReadFile(filepath.Join(s.dir, "data", "prosody.sqlite")); err == nil {
		places["data/prosody.sqlite"] = b
	}

	leaks := 0
	for where, text := range places {
		for name, val := range secrets {
			if bytes.Contains(text, []byte(val)) {
				leaks++
				res.problem("%s found in %s", name, where)
			}
		}
	}
	if len(places["entrypoint stderr"]) == 0 || len(places["prosody stdout"]) == 0 {
		res.problem("nothing to scan: stderr %d bytes, stdout %d bytes", len(places["entrypoint stderr"]), len(places["prosody stdout"]))
	}
	res.figure(fmt.Sprintf("secrets (%d) found in scanned places (%d)", len(secrets), len(places)), fmt.Sprint(leaks), "0", leaks == 0)

	// Modes: credentials 0700 with 0400 files, the rendered config 0640 (root's,
	// prosody's group reads it), and the generated secrets closed to group and others.
	modes := 0
	check := func(path string, ok func(fs.FileMode) bool, want string) {
		fi, err := os.Stat(path)
		if err != nil {
			modes++
			res.problem("stat %s: %v", path, err)
			return
		}
		if !ok(fi.Mode().Perm()) {
			modes++
			res.problem("%s has mode %04o, want %s", strings.TrimPrefix(path, s.dir+"/"), fi.Mode().Perm(), want)
		}
	}
	is := func(m fs.FileMode) func(fs.FileMode) bool { return func(p fs.FileMode) bool { return p == m } }
	private := func(p fs.FileMode) bool { return p&0o077 == 0 }
	check(credDir, is(0o700), "0700")
	if ents, err := os.ReadDir(credDir); err == nil {
		for _, e := range ents {
			check(filepath.Join(credDir, e.Name()), is(0o400), "0400")
		}
	}
	check(s.renderedPath(), is(0o640), "0640")
	if ents, err := os.ReadDir(genDir); err == nil {
		check(genDir, private, "no group or other access")
		for _, e := range ents {
			check(filepath.Join(genDir, e.Name()), private, "no group or other access")
		}
	}
	res.figure("files with a wrong mode", fmt.Sprint(modes), "0", modes == 0)
	res.Done = 1
	return nil
}
