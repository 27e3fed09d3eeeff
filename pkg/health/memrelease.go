package health

import (
	"context"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"time"
)

// ScrapeReleaseDelay is how long after a /metrics scrape the Monitor hands the
// memory the scrape left on the heap back to the operating system.
//
// Each scrape gathers every collector and encodes the answer: about 250 KiB of
// short-lived garbage. The Go runtime keeps the heap it grew to (up to its
// 4 MiB minimum GC goal with the default GOGC=100) resident until its
// background scavenger gets to it, so without a release a few dozen scrapes
// leave RssAnon 4-5 MiB above idle for good.
const ScrapeReleaseDelay = time.Second

// minRelease is the heap a release could return below which it is not worth
// a forced collection.
const minRelease = 256 << 10

// releaseLoop runs until ctx ends. At most once per ScrapeReleaseDelay after
// a scrape (m.scraped), it runs a collection and returns free heap pages to
// the OS (debug.FreeOSMemory), if at least minRelease could be returned
// (releasable).
// It costs nothing while nobody scrapes and never runs on the /readyz path.
func (m *Monitor) releaseLoop(ctx context.Context) {
	t := time.NewTimer(ScrapeReleaseDelay)
	t.Stop()
	armed := false
	for {
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.scraped:
			if !armed {
				t.Reset(ScrapeReleaseDelay)
				armed = true
			}
		case <-t.C:
			armed = false
			if releasable() >= minRelease {
				debug.FreeOSMemory()
				m.releases.Add(1)
			}
		}
	}
}

// heapFree is the heap the runtime holds from the OS in pages without a
// single object: what a release returns.
func heapFree() uint64 {
	s := []runtimemetrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	runtimemetrics.Read(s)
	return sampleUint(s[0])
}

// releasable is what a release could return: the free heap pages, plus the
// objects that died since the last collection (a scrape's garbage), which
// only the release's own collection frees. Counting the free pages alone
// would skip the release right after a scrape, when its garbage is not yet
// collected, and leave it resident once the next natural collection frees it.
func releasable() uint64 {
	s := []runtimemetrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	runtimemetrics.Read(s)
	free, objects, live := sampleUint(s[0]), sampleUint(s[1]), sampleUint(s[2])
	if objects > live {
		free += objects - live
	}
	return free
}

func sampleUint(s runtimemetrics.Sample) uint64 {
	if s.Value.Kind() != runtimemetrics.KindUint64 {
		return 0
	}
	return s.Value.Uint64()
}

// noteScrape tells releaseLoop a scrape ended; it never blocks.
func (m *Monitor) noteScrape() {
	select {
	case m.scraped <- struct{}{}:
	default:
	}
}
