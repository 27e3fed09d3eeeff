package health

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/pkg/listeners"
)

// With the sockets held for Prosody, /status lists them as inherited with
// their accept queues, /metrics has prosody_pfe_listener_queued, and a start
// counts as one with inherited sockets; without, the start counts as bound.
func TestListenersInStatusAndMetrics(t *testing.T) {
	p, err := entrypointtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	set, _, err := listeners.Open([]listeners.Spec{{Service: "c2s", Interface: "127.0.0.1", Port: p[0]}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	addr := "127.0.0.1:" + strconv.Itoa(p[0])
	c, err := net.DialTimeout("tcp", addr, 2*time.Second) // queued: nobody accepts
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	m := startMonitor(t, Config{Mode: ModeProsody, C2SAddr: addr, Domain: "localhost", Interval: time.Hour})
	m.ChildStarted(4242) // before SetListeners: Prosody bound its own
	m.SetListeners(set)
	m.ChildStarted(4243)

	var st struct {
		Listeners listenersJSON `json:"listeners"`
	}
	_, body, _ := get(t, m, "/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	want := listenerJSON{Service: "c2s", Address: addr, Inherited: true, Queued: 1}
	if !st.Listeners.SocketActivation || len(st.Listeners.Sockets) != 1 || st.Listeners.Sockets[0] != want {
		t.Errorf("/status listeners = %+v, want activation on and %+v", st.Listeners, want)
	}
	_, metrics, _ := get(t, m, "/metrics")
	for _, line := range []string{
		`prosody_pfe_listener_queued{address="` + addr + `",service="c2s"} 1`,
		`prosody_pfe_child_starts_total{listeners="inherited"} 1`,
		`prosody_pfe_child_starts_total{listeners="bound"} 1`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
