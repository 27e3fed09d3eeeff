package e2e

import (
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// vmRSS is the resident memory of pid in bytes, from /proc/<pid>/status.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS of %d: %q", pid, v)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// The finding as it was reported: 150 connections each sending ~1 MB of
// request header to the health port and never finishing took the
// entrypoint from 25 to 290 MB, and the memory stayed. The header limit (431
// after 8 KiB) and the connection bound keep its resident memory where it
// was, and the probes keep answering.
func TestHealthPortMemoryBounded(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{}).Start()
	s.WaitReady(20 * time.Second)
	pid := s.Cmd.Process.Pid
	before := vmRSS(t, pid)

	const conns = 150
	pad := strings.Repeat("a", 1<<20)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.Health))
		if err != nil {
			continue // refused at once: that is bounded too
		}
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
		wg.Go(func() {
			_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			// The write ends when the server has read it all (kept in memory)
			// or refused it (431 and close: a reset here).
			_, _ = io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: x\r\nX-Pad: "+pad)
		})
	}
	wg.Wait()
	after := vmRSS(t, pid)
	growth := after - before
	t.Logf("entrypoint VmRSS %d MiB before, %d MiB with %d clients that sent 1 MiB of header each", before>>20, after>>20, conns)
	if growth > 32<<20 {
		t.Errorf("the entrypoint grew by %d MiB, want under 32 MiB", growth>>20)
	}
	code, body, err := s.Get("/livez")
	if err != nil || code != 200 {
		t.Errorf("/livez after the flood = %d %q %v, want 200", code, body, err)
	}
}
