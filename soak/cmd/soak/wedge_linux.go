package main

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// wedgeTimeout is PROSODY_WATCHDOG_TIMEOUT in the wedge soak: short, so a
// round takes seconds, and well above the probe's own 2s timeout.
const wedgeTimeout = 3 * time.Second

// soakWedge: SIGSTOP of prosody N times with clients connected, healed by the
// watchdog; see about["wedge"].
func soakWedge(r *runner, sc scenario, res *result) error {
	stop := deadline(time.Now().Add(sc.Limit - 15*time.Second))
	s, err := r.startReady(serverConfig{Env: map[string]string{
		"PROSODY_WATCHDOG_TIMEOUT": wedgeTimeout.String(),
		"PROSODY_HEALTH_INTERVAL":  "1s",
	}}, 60*time.Second)
	if err != nil {
		return err
	}
	defer s.stopAfter(res, "the wedges")
	c, err := s.chatting(r.clients, [2]account{{"alice@localhost", "soak-alice-pw"}, {"bob@localhost", "soak-bob-pw"}})
	if err != nil {
		return err
	}
	defer func() {
		if _, err := c.finish(20 * time.Second); err != nil {
			res.problem("chat clients: %v", err)
		}
	}()

	var healed, back []time.Duration
	reconnectFail, killed, left := 0, 0, 0
	for i := 0; i < sc.N && !stop.expired(); i++ {
		old, err := s.prosodyPID()
		if err != nil {
			return fmt.Errorf("wedge %d: %w", i+1, err)
		}
		t0 := time.Now()
		if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("wedge %d: SIGSTOP prosody pid %d: %w", i+1, old, err)
		}
		err = s.waitReplaced(old, 60*time.Second, 20*time.Millisecond)
		if err != nil {
			_ = syscall.Kill(old, syscall.SIGCONT)
			return fmt.Errorf("wedge %d: %w\nentrypoint stderr (tail):\n%s", i+1, err, tail(s.Stderr(), 3000))
		}
		healed = append(healed, time.Since(t0))
		if err := c.waitSessions(i+2, 30*time.Second); err != nil {
			reconnectFail++
			res.problem("wedge %d: %v", i+1, err)
		} else {
			back = append(back, time.Since(t0))
		}
		if st, _, err := s.status(); err == nil && st.Child.LastExit != nil && st.Child.LastExit.PID == old && st.Child.LastExit.Code == 137 {
			killed++
		}
		if err := syscall.Kill(old, 0); !errors.Is(err, syscall.ESRCH) {
			left++
			res.problem("wedge %d: the stopped prosody %d still exists", i+1, old)
		}
		res.Done++
	}
	restarts, _, err := s.metric("prosody_pfe_watchdog_restarts_total")
	if err != nil {
		return err
	}
	hMed, _, hMax := durations(healed)
	bMed, _, bMax := durations(back)
	res.figure("wedges (SIGSTOP of prosody)", fmt.Sprint(res.Done), fmt.Sprint(sc.N), res.Done == sc.N)
	res.figure("watchdog restarts counted (prosody_pfe_watchdog_restarts_total)", fmt.Sprint(restarts), fmt.Sprint(res.Done), int(restarts) == res.Done)
	// Bound: the next probe (≤ 1s), three probes that time out (2s each), the
	// watchdog timeout counted from the first of them, the stop and a start.
	const healBound = 20 * time.Second
	res.figure("SIGSTOP → new prosody ready, median", ms(hMed), "(measured)", true)
	res.figure("SIGSTOP → new prosody ready, max", ms(hMax), "≤ "+ms(healBound), hMax <= healBound)
	res.figure("SIGSTOP → both clients logged in again, median / max", ms(bMed)+" / "+ms(bMax), "(measured)", true)
	res.figure("wedges after which a client did not reconnect within 30s", fmt.Sprint(reconnectFail), "0", reconnectFail == 0)
	res.figure("wedged prosody ended by SIGKILL instead of its own SIGTERM handling", fmt.Sprint(killed), "0", killed == 0)
	res.figure("wedged prosody processes left behind", fmt.Sprint(left), "0", left == 0)
	return nil
}
