package health

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// A request header over MaxHeaderBytes is refused with 431 instead of being
// buffered: with the standard library's 1 MB default, 150 slow clients held
// hundreds of megabytes of the entrypoint.
func TestHeaderLimit(t *testing.T) {
	m := startMonitor(t, Config{Mode: ModePlain})
	for _, tc := range []struct {
		size int
		want int
	}{
		{1 << 10, http.StatusOK},
		{64 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, err := http.NewRequest(http.MethodGet, "http://"+m.Addr()+LivePath, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Padding", strings.Repeat("a", tc.size))
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET with %d bytes of header: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET with %d bytes of header = %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}

// Slow clients that open connections and never finish their header hold at
// most MaxConns connections of the process: the others are closed at once,
// counted, and the held ones are still served.
func TestSlowConnectionsCapped(t *testing.T) {
	const limit, extra = 8, 12
	m := startMonitor(t, Config{Mode: ModePlain, MaxConns: limit})
	// slow opens a connection and sends an unfinished header, under the header
	// limit: the slow-loris pattern. The error is the server's refusal, seen at
	// connect, write or read depending on when its reset arrives.
	slow := func() (net.Conn, error) {
		c, err := net.Dial("tcp", m.Addr())
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		_, err = io.WriteString(c, "GET "+LivePath+" HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("s", 4<<10))
		return c, err
	}
	var held []net.Conn
	for range limit {
		c, err := slow()
		if err != nil {
			t.Fatalf("connection within the limit: %v", err)
		}
		held = append(held, c)
	}
	wait.Until(t, 5*time.Second, "the first connections accepted", func() error {
		if n := metricValue(t, m, "prosody_pfe_health_connections"); n != limit {
			return fmt.Errorf("%v open", n)
		}
		return nil
	})
	// Each connection over the limit is closed by the server without an answer.
	for i := range extra {
		c, err := slow()
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			var n int
			n, err = c.Read(make([]byte, 1))
			if n != 0 {
				err = nil
			}
		}
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection %d over the limit: %v; want it closed by the server", i+1, err)
		}
	}
	if open, refused := metricValue(t, m, "prosody_pfe_health_connections"), metricValue(t, m, "prosody_pfe_health_connections_refused_total"); open != limit || refused != extra {
		t.Errorf("open %v, refused %v; want %d and %d", open, refused, limit, extra)
	}
	// A held connection finishes its request and gets its answer.
	if _, err := io.WriteString(held[0], "\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(held[0]), nil)
	if err != nil {
		t.Fatalf("held connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("held connection answered %d, want 200", resp.StatusCode)
	}
	// Its slot is free again once the server closed it.
	wait.Until(t, 5*time.Second, "the finished connection's slot released", func() error {
		if n := metricValue(t, m, "prosody_pfe_health_connections"); n != limit-1 {
			return fmt.Errorf("%v open", n)
		}
		return nil
	})
}

// One address other than loopback gets at most its share of the limit;
// loopback peers only the total; a released slot is reusable.
func TestLimitListenerPerPeer(t *testing.T) {
	l := newLimitListener(nil, 5, 2, prometheus.NewGauge(prometheus.GaugeOpts{Name: "o"}), prometheus.NewCounter(prometheus.CounterOpts{Name: "r"}))
	peerA, peerB := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	lo := netip.MustParseAddr("127.0.0.1")
	for i, tc := range []struct {
		peer netip.Addr
		want bool
	}{
		{peerA, true}, {peerA, true}, {peerA, false}, // peer share 2
		{peerB, true},
		{lo, true}, {lo, true}, // total now 5
		{lo, false}, {peerB, false}, // total reached
	} {
		if got := l.acquire(tc.peer); got != tc.want {
			t.Fatalf("step %d: acquire(%s) = %v, want %v", i, tc.peer, got, tc.want)
		}
	}
	l.release(peerA)
	if !l.acquire(peerA) || l.acquire(peerA) {
		t.Fatal("after a release, peer A should get exactly one more slot")
	}
	if got := peerAddr(&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 1}); !got.IsLoopback() {
		t.Errorf("peerAddr(::ffff:127.0.0.1) = %s, want loopback", got)
	}
}

// metricValue is the value of the first series of the gauge or counter name
// whose labels include the label/value pairs given, read from m's registry
// directly (a full connection limit refuses a scrape), or -1 when there is
// none.
func metricValue(t *testing.T, m *Monitor, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, x := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(x.GetLabel(), func(l *dto.LabelPair) bool {
					return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}) {
					continue series
				}
			}
			switch {
			case x.GetGauge() != nil:
				return x.GetGauge().GetValue()
			case x.GetCounter() != nil:
				return x.GetCounter().GetValue()
			}
		}
	}
	return -1
}
