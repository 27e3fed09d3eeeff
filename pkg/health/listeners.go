package health

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prosody-pfe/prosody-pfe/pkg/listeners"
)

// ListenerSet is what the Monitor reads of the sockets the entrypoint holds
// for Prosody (*listeners.Set): which they are and, per socket in the same
// order, the connections waiting in its accept queue (-1: unknown).
type ListenerSet interface {
	Specs() []listeners.Spec
	Queued() []int
}

// listenerJSON is one socket in /status.
type listenerJSON struct {
	Service string `json:"service"`
	Address string `json:"address"`
	// Inherited: the entrypoint holds it and Prosody inherits it; a restart
	// queues new connections instead of refusing them.
	Inherited bool `json:"inherited"`
	// Queued is the connections waiting for Prosody to accept them.
	Queued int `json:"queued"`
}

// listenersJSON is the "listeners" section of /status.
type listenersJSON struct {
	// SocketActivation: PROSODY_SOCKET_ACTIVATION is on (false: Prosody binds its own sockets).
	SocketActivation bool           `json:"socket_activation"`
	Sockets          []listenerJSON `json:"sockets"`
}

// SetListeners tells the Monitor which sockets it holds for Prosody; from now
// on each start of Prosody counts as one with inherited sockets (when the set
// holds any), /status lists them and /metrics reports their accept queues.
// Call it once, before the first start; not calling it means Prosody binds
// its own sockets.
func (m *Monitor) SetListeners(set ListenerSet) {
	m.mu.Lock()
	m.listeners = set
	m.mu.Unlock()
}

// listenerStatus is the /status section; the caller holds m.mu.
func (m *Monitor) listenerStatus() *listenersJSON {
	out := &listenersJSON{Sockets: []listenerJSON{}}
	if m.listeners == nil {
		return out
	}
	out.SocketActivation = true
	specs, queued := m.listeners.Specs(), m.listeners.Queued()
	for i, sp := range specs {
		q := -1
		if i < len(queued) {
			q = queued[i]
		}
		out.Sockets = append(out.Sockets, listenerJSON{Service: sp.Service, Address: sp.Address(), Inherited: true, Queued: q})
	}
	return out
}

// queueCollector reports prosody_pfe_listener_queued at scrape time: one
// getsockopt per held socket.
type queueCollector struct {
	m    *Monitor
	desc *prometheus.Desc
}

func newQueueCollector(m *Monitor) *queueCollector {
	return &queueCollector{m: m, desc: prometheus.NewDesc(namespace+"_listener_queued",
		"Connections waiting in the accept queue of a listener the entrypoint holds for Prosody (PROSODY_SOCKET_ACTIVATION): while Prosody restarts, the clients that would otherwise have been refused.",
		[]string{"service", "address"}, nil)}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	set := c.m.listeners
	c.m.mu.Unlock()
	if set == nil {
		return
	}
	specs, queued := set.Specs(), set.Queued()
	for i, sp := range specs {
		if i < len(queued) && queued[i] >= 0 {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(queued[i]), sp.Service, sp.Address())
		}
	}
}
