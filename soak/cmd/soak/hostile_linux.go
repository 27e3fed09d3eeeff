package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// soakHostile: a local user with the prosody user's rights (or nobody's)
// attacks the running server N times; see about["hostile"].
func soakHostile(r *runner, sc scenario, res *result) error {
	u, err := user.Lookup("prosody")
	if err != nil {
		return err
	}
	puid, _ := strconv.Atoi(u.Uid)
	pgid, _ := strconv.Atoi(u.Gid)
	s, err := r.startReady(serverConfig{}, 60*time.Second)
	if err != nil {
		return err
	}
	defer func() { _, _ = s.stop(15 * time.Second) }()

	// What root keeps from prosody: a directory and a secret in it.
	rootDir := filepath.Join(s.dir, "root-only")
	rootFile := filepath.Join(rootDir, "secret")
	rootSecret := marker("soakROOT")
	if err := os.Mkdir(rootDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(rootFile, []byte(rootSecret+"\n"), 0o600); err != nil {
		return err
	}
	secrets, err := os.ReadDir(filepath.Join(s.dir, "data", "secrets"))
	if err != nil || len(secrets) == 0 {
		return fmt.Errorf("no generated secret in data/secrets to attack (%v)", err)
	}
	secretPath := filepath.Join(s.dir, "data", "secrets", secrets[0].Name())
	secretData, err := os.ReadFile(secretPath)
	if err != nil {
		return err
	}
	cfg := s.renderedPath()
	notify := filepath.Join(s.dir, "runtime", "notify.sock")
	as := func(uid, gid int, env []string, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, "setpriv", append([]string{"--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(gid), "--clear-groups", "--"}, args...)...)
		c.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		return c.Run()
	}
	prosody := func(args ...string) error { return as(puid, pgid, nil, args...) }

	// A missing metric reads 0 and fails the figure at the end.
	droppedBefore, _, _ := s.metric("prosody_pfe_notify_dropped_total")
	var (
		tamperTries, tamperWins int
		spoofTries, spoofWins   int
		nextTries, nextWins     int
		secretTries, secretWins int
		unready, hashMismatch   int
		refused, otherOutcomes  int
	)
	end := deadline(time.Now().Add(sc.Limit - 10*time.Second))
	for i := 0; i < sc.N && !end.expired(); i++ {
		good, err := os.ReadFile(cfg)
		if err != nil {
			return err
		}
		// The rendered config: append to it, replace it.
		won := false
		for _, attempt := range [][]string{
			{"sh", "-c", "echo 'Host \"*\"' >> " + cfg},
			{"sh", "-c", "cp " + cfg + " /tmp/soak-hostile-$$ && mv -f /tmp/soak-hostile-$$ " + cfg + "; rc=$?; rm -f /tmp/soak-hostile-$$; exit $rc"},
		} {
			tamperTries++
			if prosody(attempt...) == nil {
				tamperWins++
				won = true
				res.problem("step %d: the prosody user changed the rendered config: %q", i, attempt)
			}
		}
		if now, err := os.ReadFile(cfg); (err != nil || !bytes.Equal(now, good)) && !won {
			tamperWins++
			res.problem("step %d: the rendered config is not the rendered bytes any more (%v)", i, err)
		}

		// The notify socket: nobody cannot reach it; prosody's messages from
		// another process than the child change nothing.
		env := []string{"NOTIFY_SOCKET=" + notify}
		spoofTries++
		if as(65534, 65534, env, "systemd-notify", "--no-block", "STOPPING=1") == nil {
			spoofWins++
			res.problem("step %d: nobody sent to the notify socket", i)
		}
		for _, msg := range []string{"STOPPING=1", "READY=1"} {
			spoofTries++
			if err := as(puid, pgid, env, "systemd-notify", "--no-block", msg); err != nil {
				res.problem("step %d: systemd-notify %s as prosody: %v", i, msg, err)
			}
		}
		if settled(time.Second, func() bool { return !s.ready() }) {
			spoofWins++
			res.problem("step %d: /readyz left 200 after spoofed notifications", i)
		}

		// $RUNTIME/next as a link to root's directory, and a generated secret
		// as a link to root's file; then a reload, which reads both places.
		nextTries++
		if prosody("ln", "-s", rootDir, filepath.Join(s.dir, "runtime", "next")) == nil {
			nextWins++
			res.problem("step %d: the prosody user planted runtime/next", i)
		}
		secretTries++
		if err := prosody("ln", "-sf", rootFile, secretPath); err != nil {
			res.problem("step %d: prosody could not replace its own secret file: %v", i, err)
		}
		before, _, _ := s.metric("prosody_pfe_reloads_total")
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			return err
		}
		if err := s.poll(20*time.Second, 20*time.Millisecond, "the reload", func() bool {
			n, _, err := s.metric("prosody_pfe_reloads_total")
			return err == nil && n > before
		}); err != nil {
			res.problem("step %d: %v", i, err) // a reload waits for readiness: it may be gone for good
			break
		}
		if st, _, err := s.status(); err == nil && st.LastReload != nil && st.LastReload.Outcome == "refused" {
			refused++
		} else {
			otherOutcomes++
		}
		if why := rootUntouched(rootDir, rootFile, rootSecret, filepath.Join(s.dir, "runtime")); why != "" {
			nextWins++
			secretWins++
			res.problem("step %d: %s", i, why)
		}
		// The secret back in place, as prosody had it.
		if err := os.Remove(secretPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(secretPath, secretData, 0o600); err != nil {
			return err
		}
		if err := os.Chown(secretPath, puid, pgid); err != nil {
			return err
		}

		if !s.ready() {
			unready++
			res.problem("step %d: /readyz not 200 after the attacks", i)
		}
		if st, _, err := s.status(); err != nil || st.ConfigHash != sha256Hex(good) {
			hashMismatch++
			res.problem("step %d: /status config_hash does not match the rendered file (%v)", i, err)
		}
		res.Done++
	}
	dropped, _, _ := s.metric("prosody_pfe_notify_dropped_total")

	res.figure("rendered-config tampering by prosody (append, replace): attempts → changed the file",
		fmt.Sprintf("%d → %d", tamperTries, tamperWins), "0 changed", tamperWins == 0)
	res.figure("notify spoofing (nobody; prosody, not the child): attempts → readiness lost",
		fmt.Sprintf("%d → %d", spoofTries, spoofWins), "0 lost", spoofWins == 0)
	res.figure("prosody's notify datagrams dropped (prosody_pfe_notify_dropped_total)",
		fmt.Sprint(dropped-droppedBefore), fmt.Sprintf("= %d (2 a step)", 2*res.Done), dropped-droppedBefore == float64(2*res.Done))
	res.figure("runtime/next planted as a link to a root directory: attempts → planted, or root directory changed",
		fmt.Sprintf("%d → %d", nextTries, nextWins), "0", nextWins == 0)
	res.figure("generated secret replaced by a link to a root file: attempts → root file read, changed or exposed",
		fmt.Sprintf("%d → %d", secretTries, secretWins), "0", secretWins == 0)
	res.figure("reloads after a secret link (refused / other)", fmt.Sprintf("%d / %d", refused, otherOutcomes),
		"all refused", otherOutcomes == 0)
	res.figure("steps ending not ready, or /status config_hash ≠ the file", fmt.Sprintf("%d, %d", unready, hashMismatch),
		"0, 0", unready == 0 && hashMismatch == 0)
	return nil
}

// rootUntouched says what changed in root's directory and file, or where
// prosody could now read the root secret, or "".
func rootUntouched(dir, file, secret, runtimeDir string) string {
	for _, c := range []struct {
		path string
		mode fs.FileMode
	}{{dir, fs.ModeDir | 0o700}, {file, 0o600}} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			return fmt.Sprintf("%s: %v", c.path, err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 || fi.Mode() != c.mode {
			return fmt.Sprintf("%s is now %v %d:%d", c.path, fi.Mode(), st.Uid, st.Gid)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 1 {
		return fmt.Sprintf("%s holds %d entries, want only the secret (%v)", dir, len(ents), err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != secret+"\n" {
		return fmt.Sprintf("%s was rewritten (%v)", file, err)
	}
	found := ""
	_ = filepath.WalkDir(runtimeDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
				found = p
			}
		}
		return nil
	})
	if found != "" {
		return "the root secret was copied to " + found
	}
	return ""
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
