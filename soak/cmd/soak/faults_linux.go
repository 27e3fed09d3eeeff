package main

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// soakSigterm: SIGTERM at random moments of start-up; see about["sigterm"].
func soakSigterm(r *runner, sc scenario, res *result) error {
	stop := deadline(time.Now().Add(sc.Limit - 15*time.Second))
	rng := rand.New(rand.NewSource(r.opt.Seed))
	dir, err := os.MkdirTemp(r.tmp, "server-")
	if err != nil {
		return err
	}
	// One full start first: it creates the data (certificate, secrets, database)
	// and measures the time to ready that the random moments are spread over.
	t0 := time.Now()
	s, err := r.startReady(serverConfig{Dir: dir}, 60*time.Second)
	if err != nil {
		return err
	}
	ready := time.Since(t0)
	if code, err := s.stop(15 * time.Second); err != nil || (code != 0 && code != 143) {
		return fmt.Errorf("first stop: code %d, %v", code, err)
	}
	res.figure("time to ready (first start, fresh data)", ms(ready), "(measured)", true)

	codes := map[int]int{}
	var exits []time.Duration
	bad, leftovers, early := 0, 0, 0
	for i := 1; i <= sc.N && !stop.expired(); i++ {
		s, err := newServer(serverConfig{Entrypoint: r.opt.Entrypoint, ConfigDir: filepath.Join(r.opt.Root, "config"), Dir: dir})
		if err != nil {
			return err
		}
		at := time.Duration(rng.Int63n(int64(ready) * 12 / 10))
		if err := s.start(); err != nil {
			return err
		}
		// The fault is the moment itself: sleeping to it is the point, not a wait for a condition.
		time.Sleep(at)
		t := time.Now()
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		code, ok := s.wait(15 * time.Second)
		if !ok {
			s.killGroup()
			bad++
			res.problem("SIGTERM %d at %s: no exit within 15s\nentrypoint stderr (tail):\n%s", i, ms(at), tail(s.Stderr(), 2000))
			continue
		}
		exits = append(exits, time.Since(t))
		codes[code]++
		if s.killedBySignal() {
			// The Go runtime was still starting: no process can handle a signal
			// before it installs its handler (as PID 1 the kernel would drop it).
			early++
		}
		if code != 0 && code != 143 {
			bad++
			res.problem("SIGTERM %d at %s: exit code %d (want 0 or 143)\nentrypoint stderr (tail):\n%s", i, ms(at), code, tail(s.Stderr(), 2000))
		}
		if left, err := mentioning(dir); err != nil {
			return err
		} else if len(left) > 0 {
			leftovers++
			res.problem("SIGTERM %d at %s: left running: %s", i, ms(at), describe(left))
			for _, p := range left {
				_ = syscall.Kill(p.PID, syscall.SIGKILL)
			}
		}
		res.Done++
	}
	med, _, worst := durations(exits)
	res.figure("SIGTERMs", fmt.Sprint(res.Done), fmt.Sprint(sc.N), res.Done == sc.N)
	res.figure("exit codes (code: count)", fmt.Sprint(codes), "only 0 and 143", bad == 0)
	res.figure("of which killed by SIGTERM itself, before main installed its handlers", fmt.Sprint(early), "(measured)", true)
	res.figure("SIGTERM → exit, median / max", ms(med)+" / "+ms(worst), "≤ stop timeout 10 s", worst <= 10*time.Second)
	res.figure("runs that left a process behind", fmt.Sprint(leftovers), "0", leftovers == 0)
	return nil
}

// soakCrash: SIGKILL of the whole server mid-traffic, then a restart on the same
// data; see about["crash"].
func soakCrash(r *runner, sc scenario, res *result) error {
	stop := deadline(time.Now().Add(sc.Limit - 20*time.Second))
	dir, err := os.MkdirTemp(r.tmp, "server-")
	if err != nil {
		return err
	}
	var users []account
	integrityBad, lost := 0, 0
	var restarts []time.Duration
	for round := 1; round <= sc.N && !stop.expired(); round++ {
		t0 := time.Now()
		s, err := r.startReady(serverConfig{Dir: dir}, 60*time.Second)
		if err != nil {
			return fmt.Errorf("round %d: start on the same data: %w", round, err)
		}
		if round > 1 {
			restarts = append(restarts, time.Since(t0))
		}
		// Every account made so far still logs in.
		if failed, err := logins(r.clients, s.c2s, s.ca(), users, 60*time.Second); err != nil {
			s.killGroup()
			return fmt.Errorf("round %d: %w", round, err)
		} else if len(failed) > 0 {
			lost += len(failed)
			res.problem("round %d: accounts that no longer log in: %s", round, strings.Join(failed, "; "))
		}
		var fresh []account
		for i := 1; i <= 5; i++ {
			fresh = append(fresh, account{fmt.Sprintf("crash%d-%d@localhost", round, i), fmt.Sprintf("pw-%d-%d", round, i)})
		}
		if err := s.createUsers(fresh); err != nil {
			s.killGroup()
			return fmt.Errorf("round %d: %w", round, err)
		}
		users = append(users, fresh...)
		c, err := startChat(r.clients, s.c2s, s.ca(), fresh[0], fresh[1], 20*time.Second)
		if err != nil {
			s.killGroup()
			return fmt.Errorf("round %d: %w", round, err)
		}
		// Let the archive take writes, then kill everything at once, mid-traffic.
		time.Sleep(500 * time.Millisecond)
		st, _, err := s.status()
		if err != nil {
			return err
		}
		prosodyPGID, _ := syscall.Getpgid(st.Child.PID)
		_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
		if prosodyPGID > 0 {
			_ = syscall.Kill(-prosodyPGID, syscall.SIGKILL)
		}
		<-s.done
		c.kill()
		if !settled(5*time.Second, func() bool { left, err := mentioning(dir); return err == nil && len(left) == 0 }) {
			left, _ := mentioning(dir)
			return fmt.Errorf("round %d: still running 5s after SIGKILL: %s", round, describe(left))
		}
		out, err := exec.Command("sqlite3", filepath.Join(dir, "data", "prosody.sqlite"), "PRAGMA integrity_check").CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != "ok" {
			integrityBad++
			res.problem("round %d: PRAGMA integrity_check: %q %v", round, got, err)
		}
		res.Done++
	}
	// The last restart: every account ever made still logs in, then a clean stop.
	s, err := r.startReady(serverConfig{Dir: dir}, 60*time.Second)
	if err != nil {
		return fmt.Errorf("final start on the same data: %w", err)
	}
	failed, err := logins(r.clients, s.c2s, s.ca(), users, 120*time.Second)
	if code, serr := s.stop(15 * time.Second); serr != nil || (code != 0 && code != 143) {
		res.problem("final stop: code %d, %v", code, serr)
	}
	if err != nil {
		return err
	}
	lost += len(failed)
	if len(failed) > 0 {
		res.problem("after the last crash, accounts that no longer log in: %s", strings.Join(failed, "; "))
	}
	med, _, worst := durations(restarts)
	res.figure("crashes (SIGKILL of entrypoint and prosody groups)", fmt.Sprint(res.Done), fmt.Sprint(sc.N), res.Done == sc.N)
	res.figure("integrity_check not ok", fmt.Sprint(integrityBad), "0", integrityBad == 0)
	res.figure("accounts created → lost", fmt.Sprintf("%d → %d", len(users), lost), "0 lost", lost == 0)
	if len(restarts) > 0 {
		res.figure("restart after crash to ready, median / max", ms(med)+" / "+ms(worst), "(measured)", true)
	}
	return nil
}
