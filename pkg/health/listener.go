package health

import (
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits of the health port. Probes and scrapes need a handful of connections;
// the limits keep a crowd of slow or idle clients from holding memory (each
// connection may buffer a request header of up to MaxHeaderBytes) and one
// network peer from taking every slot from the probes.
const (
	// DefaultMaxConns is Config.MaxConns when it is zero: the connections the
	// health port keeps open at once. A connection over it is closed at once,
	// unanswered, and counted in prosody_pfe_health_connections_refused_total.
	DefaultMaxConns = 256
	// MaxConnsPerPeer is how many of those one address other than loopback may
	// hold. Loopback peers (the Docker HEALTHCHECK, a local benchmark, a sidecar
	// proxy) are bounded by the total only.
	MaxConnsPerPeer = 32
	// MaxHeaderBytes bounds a request's header; a larger one is answered
	// 431 Request Header Fields Too Large. Probes send well under 1 KiB.
	MaxHeaderBytes = 8 << 10
)

// limitListener accepts at most max connections at once, at most perPeer of
// them from one address other than loopback, and closes any other at once.
type limitListener struct {
	net.Listener
	max, perPeer int
	open         prometheus.Gauge
	refused      prometheus.Counter

	mu    sync.Mutex
	total int
	peers map[netip.Addr]int
}

func newLimitListener(ln net.Listener, max, perPeer int, open prometheus.Gauge, refused prometheus.Counter) *limitListener {
	return &limitListener{Listener: ln, max: max, perPeer: perPeer, open: open, refused: refused, peers: map[netip.Addr]int{}}
}

// Accept returns the next connection within the limits. A connection over a
// limit is reset (no TIME_WAIT kept for it) and never reaches the server.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := peerAddr(c.RemoteAddr())
		if !l.acquire(peer) {
			l.refused.Inc()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(peer) }}, nil
	}
}

func (l *limitListener) acquire(peer netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return false
	}
	if !peer.IsLoopback() {
		if l.peers[peer] >= l.perPeer {
			return false
		}
		l.peers[peer]++
	}
	l.total++
	l.open.Set(float64(l.total))
	return true
}

func (l *limitListener) release(peer netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if !peer.IsLoopback() {
		if l.peers[peer]--; l.peers[peer] <= 0 {
			delete(l.peers, peer)
		}
	}
	l.open.Set(float64(l.total))
}

// limitedConn gives its slot back on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// peerAddr is the IP of a connection's remote end (IPv4-mapped IPv6 unmapped),
// or the zero Addr when it has none (never loopback, so it counts per peer).
func peerAddr(a net.Addr) netip.Addr {
	if tcp, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(tcp.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
