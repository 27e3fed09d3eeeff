package health

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// TestScrapesGiveTheirMemoryBack: a burst of /metrics scrapes must not leave
// the heap it grew resident: one release delay after the last scrape, the
// Monitor collects and returns the free heap pages to the OS, at most once
// per delay. Without it the runtime keeps up to its GC goal (4 MiB) resident:
// RssAnon of the entrypoint stayed 5 MiB above idle after 1,000 scrapes
// (bench/run --only rss measures the process). The test counts releases, not
// the runtime's free pages: those also hold the per-P page caches (up to
// 512 KiB each), which no release returns, and they overlap with what a test
// binary's own garbage leaves, so they cannot tell a release from none.
func TestScrapesGiveTheirMemoryBack(t *testing.T) {
	m := startMonitor(t, Config{Mode: ModePlain})
	// Idle costs nothing: no scrape, no release.
	wait.Holds(t, 2*ScrapeReleaseDelay, "no release while nobody scrapes", func() error {
		if n := m.releases.Load(); n != 0 {
			return fmt.Errorf("%d releases without a scrape", n)
		}
		return nil
	})
	c := &http.Client{Timeout: 5 * time.Second}
	begin := time.Now()
	for i := range 200 {
		resp, err := c.Get("http://" + m.Addr() + MetricsPath)
		if err != nil {
			t.Fatalf("scrape %d: %v", i+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape %d: status %d", i+1, resp.StatusCode)
		}
	}
	c.CloseIdleConnections()
	burst := time.Since(begin)
	wait.Until(t, 10*ScrapeReleaseDelay, "the scrapes' heap to be returned to the OS", func() error {
		if m.releases.Load() == 0 {
			return fmt.Errorf("no release yet (%d KiB of free heap pages held)", heapFree()>>10)
		}
		return nil
	})
	// At most one release per delay, not one per scrape: one for each delay the
	// burst lasted (a slow machine, the race detector) and one after it.
	most := int64(burst/ScrapeReleaseDelay) + 2
	wait.Holds(t, 2*ScrapeReleaseDelay, "at most one release per delay", func() error {
		if n := m.releases.Load(); n > most {
			return fmt.Errorf("%d releases for a burst of 200 scrapes over %s (at most %d)", n, burst.Round(time.Millisecond), most)
		}
		return nil
	})
}
