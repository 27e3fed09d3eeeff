package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine names the CPU, for the report.
func machine() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// startReady starts a server, waits for /readyz and returns it; on failure the
// server is stopped and its log tail is part of the error.
func (r *runner) startReady(cfg serverConfig, d time.Duration) (*server, error) {
	cfg.Entrypoint = r.opt.Entrypoint
	cfg.ConfigDir = r.opt.Root + "/config"
	cfg.Parent = r.tmp
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.waitReady(d); err != nil {
		_, _ = s.stop(15 * time.Second)
		return nil, fmt.Errorf("%w\nentrypoint stderr (tail):\n%s", err, tail(s.Stderr(), 3000))
	}
	return s, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// settled polls cond every 100ms for up to d and reports whether it held.
func settled(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// soakKill9: kill -9 of prosody N times with clients connected; see about["kill9"].
func soakKill9(r *runner, sc scenario, res *result) error {
	stop := deadline(time.Now().Add(sc.Limit - 15*time.Second))
	const window = time.Second
	s, err := r.startReady(serverConfig{Env: map[string]string{
		"PROSODY_RESTART_BACKOFF": "100ms",
		"PROSODY_RESTART_WINDOW":  window.String(),
		"PROSODY_RESTART_MAX":     fmt.Sprint(sc.N + 10),
	}}, 60*time.Second)
	if err != nil {
		return err
	}
	defer s.stopAfter(res, "the kills")
	c, err := s.chatting(r.clients, [2]account{{"alice@localhost", "soak-alice-pw"}, {"bob@localhost", "soak-bob-pw"}})
	if err != nil {
		return err
	}
	defer func() {
		sum, err := c.finish(20 * time.Second)
		if err != nil {
			res.problem("chat clients: %v", err)
			return
		}
		res.figure("client sessions (both clients)", fmt.Sprint(sum.Sessions), fmt.Sprintf("= 2 x (1 + %d kills)", res.Done),
			sum.Sessions == 2*(1+res.Done))
	}()

	// Baselines once the clients are in and the server is quiet.
	ep := s.pid()
	fd0, err := fdCount(ep)
	if err != nil {
		return err
	}
	g0, _, err := s.metric("go_goroutines")
	if err != nil {
		return err
	}

	// What clients feel: a connection attempt every 20 ms through all the
	// kills. With the listeners held by the entrypoint (the default,
	// PROSODY_SOCKET_ACTIVATION) none is refused: the kernel queues them
	// until the next prosody accepts.
	attempts := startConnectLoop("127.0.0.1:"+strconv.Itoa(s.c2s), 20*time.Millisecond)
	defer func() {
		total, refused := attempts.finish()
		res.figure("c2s connection attempts refused during restarts", fmt.Sprintf("%d of %d", refused, total), "0", refused == 0 && total > 0)
	}()

	var recov []time.Duration
	zombies, reconnectFail := 0, 0
	for i := 0; i < sc.N && !stop.expired(); i++ {
		st, _, err := s.status()
		if err != nil {
			return err
		}
		// Kill only after the restart window has passed since the last start, so the
		// supervisor's backoff starts from PROSODY_RESTART_BACKOFF each time.
		if wait := window + 100*time.Millisecond - time.Duration(st.Child.UptimeSeconds*float64(time.Second)); wait > 0 {
			time.Sleep(wait)
		}
		old := st.Child.PID
		if old <= 0 {
			return fmt.Errorf("kill %d: /status names no running prosody", i+1)
		}
		t0 := time.Now()
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %d: SIGKILL prosody pid %d: %w", i+1, old, err)
		}
		// Ready again means a new prosody answers: /readyz 200 while /status names another pid.
		err = s.waitReplaced(old, 10*time.Second, 10*time.Millisecond)
		if err != nil {
			return fmt.Errorf("kill %d: %w\nentrypoint stderr (tail):\n%s", i+1, err, tail(s.Stderr(), 3000))
		}
		recov = append(recov, time.Since(t0))
		if err := c.waitSessions(i+2, 15*time.Second); err != nil {
			reconnectFail++
			res.problem("kill %d: %v", i+1, err)
		}
		if !settled(time.Second, func() bool { z, err := zombieChildren(ep); return err == nil && len(z) == 0 }) {
			z, _ := zombieChildren(ep)
			zombies++
			res.problem("kill %d: zombie children of the entrypoint for over 1s: %s", i+1, describe(z))
		}
		res.Done++
	}
	med, p99, worst := durations(recov)
	res.figure("kills", fmt.Sprint(res.Done), fmt.Sprint(sc.N), res.Done == sc.N)
	res.figure("recovery to ready, median", ms(med), "≤ 2000 ms", med <= 2*time.Second)
	res.figure("recovery to ready, p99", ms(p99), "≤ 2000 ms", p99 <= 2*time.Second)
	res.figure("recovery to ready, max", ms(worst), "≤ 2000 ms", worst <= 2*time.Second)
	res.figure("kills after which a client did not reconnect within 15s", fmt.Sprint(reconnectFail), "0", reconnectFail == 0)
	res.figure("kills followed by a lasting zombie", fmt.Sprint(zombies), "0", zombies == 0)

	// Descriptors and goroutines come back to their baseline once the last
	// restart's probes and connections are done.
	var fd1 int
	var g1 float64
	settled(5*time.Second, func() bool {
		fd1, _ = fdCount(ep)
		g1, _, _ = s.metric("go_goroutines")
		return fd1 <= fd0 && g1 <= g0
	})
	res.figure("entrypoint descriptors, start → end", fmt.Sprintf("%d → %d", fd0, fd1), "no growth", fd1 <= fd0)
	res.figure("entrypoint goroutines, start → end", fmt.Sprintf("%.0f → %.0f", g0, g1), "no growth", g1 <= g0)
	return nil
}

// connectLoop connects to an address at a fixed interval and counts the
// attempts the kernel refused (nobody listening).
type connectLoop struct {
	stop           chan struct{}
	done           chan struct{}
	total, refused int
}

// startConnectLoop connects to addr every interval until finish; each
// connection is closed at once (only whether it was refused matters).
func startConnectLoop(addr string, interval time.Duration) *connectLoop {
	l := &connectLoop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			l.total++
			if errors.Is(err, syscall.ECONNREFUSED) {
				l.refused++
			}
			if c != nil {
				c.Close()
			}
		}
	}()
	return l
}

// finish stops the loop and returns its attempts and refusals.
func (l *connectLoop) finish() (total, refused int) {
	close(l.stop)
	<-l.done
	return l.total, l.refused
}
