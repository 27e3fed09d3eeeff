package watch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/prosody-pfe/prosody-pfe/pkg/watch"
)

func TestWriteInTreeIsSeen(t *testing.T) {
	root := t.TempDir()
	f := filepath.Join(root, "core.cfg.lua")
	writeFile(t, f, "a = 1\n")
	w := start(t, watch.Config{Dirs: []string{root}, Rescan: -1})

	writeFile(t, f, "a = 2\n")
	ch := waitFor(t, w, f)
	if !slices.Equal(ch.Paths, []string{f}) {
		t.Errorf("Paths = %v, want only %s", ch.Paths, f)
	}
	if ch.At.IsZero() {
		t.Errorf("Change.At is zero")
	}
}

func TestRemovalIsSeen(t *testing.T) {
	root := t.TempDir()
	f := filepath.Join(root, "legacy.cfg.lua")
	writeFile(t, f, "x = 1\n")
	w := start(t, watch.Config{Dirs: []string{root}, Rescan: -1})

	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, f)
}

// An editor saving the vim/emacs way: swap and backup files come and go, then a temp file is
// renamed over the real one. Only the real file is reported.
func TestEditorRenameOverIsSeenAndTempFilesIgnored(t *testing.T) {
	root := t.TempDir()
	f := filepath.Join(root, "profile.cfg.lua")
	writeFile(t, f, "old\n")
	w := start(t, watch.Config{Dirs: []string{root}, Rescan: -1})

	for _, junk := range []string{".profile.cfg.lua.swp", "4913", "profile.cfg.lua~", ".#profile.cfg.lua", "#profile.cfg.lua#"} {
		writeFile(t, filepath.Join(root, junk), "junk")
	}
	tmp := filepath.Join(root, ".profile.cfg.lua.new")
	writeFile(t, tmp, "new\n")
	// The temp file itself is a (short-lived) tree file; remove it from the picture by
	// renaming it over the target, as editors do.
	if err := os.Rename(tmp, f); err != nil {
		t.Fatal(err)
	}
	ch := waitFor(t, w, f)
	for _, p := range ch.Paths {
		base := filepath.Base(p)
		if p != f && p != tmp {
			t.Errorf("editor temp file %s reported (Paths %v)", base, ch.Paths)
		}
	}
}

// A certificate replaced by rename: only its parent directory is watched, and the file's old
// inode is gone, so only the directory event and the fingerprint show it.
func TestFileRenamedOverIsSeen(t *testing.T) {
	certs := t.TempDir()
	cert := filepath.Join(certs, "example.com.crt")
	other := filepath.Join(certs, "unrelated.txt")
	writeFile(t, cert, "cert-1")
	w := start(t, watch.Config{Dirs: []string{t.TempDir()}, Files: []string{cert}, Rescan: -1})

	writeFile(t, other, "not watched") // an event in the directory that changes no watched file
	tmp := filepath.Join(certs, "example.com.crt.tmp")
	writeFile(t, tmp, "cert-2")
	if err := os.Rename(tmp, cert); err != nil {
		t.Fatal(err)
	}
	ch := waitFor(t, w, cert)
	if !slices.Equal(ch.Paths, []string{cert}) {
		t.Errorf("Paths = %v, want only %s", ch.Paths, cert)
	}
}

// kubeVolume lays out a ConfigMap/Secret volume the way the kubelet's atomic writer does:
// dir/..<ts>/<key>, dir/..data -> ..<ts>, dir/<key> -> ..data/<key>.
func kubeVolume(t *testing.T, dir, ts, key, content string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, ts, key), content)
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)); err != nil {
		t.Fatal(err)
	}
}

// kubeSwap updates the volume as the kubelet does: a new timestamped dir, a temp symlink
// renamed atomically over ..data, then the old dir removed. The key's own symlink never
// changes, so its path gets no event.
func kubeSwap(t *testing.T, dir, oldTS, newTS, key, content string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, newTS), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, newTS, key), content)
	tmpLink := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(newTS, tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, oldTS)); err != nil {
		t.Fatal(err)
	}
}

func TestKubernetesDataSwapIsSeen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		asFile bool // the key is a Config.Files entry (Secret), else the volume is a Config.Dirs root (ConfigMap)
	}{
		{"secret file", true},
		{"configmap dir", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol := t.TempDir()
			key := filepath.Join(vol, "password")
			kubeVolume(t, vol, "..2026_01_01_00_00_00.1", "password", "s3cret-1")
			cfg := watch.Config{Dirs: []string{vol}, Rescan: -1}
			if tc.asFile {
				cfg = watch.Config{Dirs: []string{t.TempDir()}, Files: []string{key}, Rescan: -1}
			}
			w := start(t, cfg)

			kubeSwap(t, vol, "..2026_01_01_00_00_00.1", "..2026_01_01_00_01_00.2", "password", "s3cret-2")
			ch := waitFor(t, w, key)
			if !slices.Equal(ch.Paths, []string{key}) {
				t.Errorf("Paths = %v, want only %s (no ..data internals)", ch.Paths, key)
			}
		})
	}
}

func TestBurstOfWritesGivesOneChange(t *testing.T) {
	root := t.TempDir()
	f := filepath.Join(root, "features.cfg.lua")
	writeFile(t, f, "0")
	// The debounce is wide enough that a busy machine stalling the writer for a moment does not
	// split the burst; the burst (50 writes paced 4 ms apart) is still longer than it, so the
	// quiet timer must restart on every event for the burst to stay one Change.
	const debounce = 150 * time.Millisecond
	w := start(t, watch.Config{Dirs: []string{root}, Debounce: debounce, Rescan: -1})

	begin := time.Now()
	last, maxGap := begin, time.Duration(0)
	for i := range 50 {
		writeFile(t, f, strings.Repeat("x", i+1))
		now := time.Now()
		maxGap = max(maxGap, now.Sub(last))
		last = now
		time.Sleep(4 * time.Millisecond)
	}
	burst := time.Since(begin)
	if maxGap >= debounce {
		t.Fatalf("the writer itself paused %s (≥ the %s debounce) inside the burst: the machine stalled, the test proves nothing", maxGap, debounce)
	}
	ch := waitFor(t, w, f)
	if !slices.Equal(ch.Paths, []string{f}) {
		t.Errorf("Paths = %v, want only %s", ch.Paths, f)
	}
	if lag := ch.At.Sub(begin); lag < burst {
		t.Errorf("Change sent %s after the burst began, before the burst (%s) ended: not debounced", lag, burst)
	}
	// Any second Change would come one debounce after the last event; wait well past that.
	noChange(t, w, 5*debounce)
}

// A writer that never pauses still gets a Change, after at most 10 × Debounce.
func TestContinuousWritesStillFire(t *testing.T) {
	root := t.TempDir()
	f := filepath.Join(root, "stream.cfg.lua")
	writeFile(t, f, "0")
	const debounce = 20 * time.Millisecond
	w := start(t, watch.Config{Dirs: []string{root}, Debounce: debounce, Rescan: -1})

	begin := time.Now()
	for i := 0; ; i++ {
		writeFile(t, f, strings.Repeat("y", i%100+1))
		select {
		case ch := <-w.Changes():
			if !slices.Contains(ch.Paths, f) {
				t.Fatalf("Paths = %v, want %s", ch.Paths, f)
			}
			if took := time.Since(begin); took > waitLimit {
				t.Fatalf("first Change after %s of continuous writes", took)
			}
			return
		case <-time.After(5 * time.Millisecond): // writer pacing: faster than the debounce
		}
		if time.Since(begin) > waitLimit {
			t.Fatalf("no Change within %s of continuous writes every 5ms (max wait is %s)", waitLimit, 10*debounce)
		}
	}
}

func TestNewSubdirectoryFilesAreSeen(t *testing.T) {
	root := t.TempDir()
	w := start(t, watch.Config{Dirs: []string{root}, Rescan: -1})

	// Created in one go: the files exist before the watcher can add the new directories, so
	// only the walk done when it sees the new directory can find them.
	deep := filepath.Join(root, "features", "groups", "muc")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(deep, "muc.cfg.lua")
	writeFile(t, f, "Component")
	waitFor(t, w, f)

	// And later files in that directory are watched too.
	g := filepath.Join(deep, "muc_mam.cfg.lua")
	writeFile(t, g, "x")
	waitFor(t, w, g)
}

// fsnotify is blind to a root that did not exist when Run started (no watch exists on it or
// its parent); the periodic rescan finds it. No fake is needed: the blindness is real.
func TestRescanFindsWhatFsnotifyMisses(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "custom")
	w := start(t, watch.Config{Dirs: []string{t.TempDir(), missing}, Rescan: 50 * time.Millisecond})

	if err := os.Mkdir(missing, 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(missing, "site.cfg.lua")
	writeFile(t, f, "x")
	waitFor(t, w, f)

	// Once the rescan has added the watch, fsnotify sees later writes itself.
	writeFile(t, f, "changed")
	waitFor(t, w, f)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  watch.Config
		want string
	}{
		{"nothing to watch", watch.Config{}, "no Dirs and no Files"},
		{"negative debounce", watch.Config{Dirs: []string{"/x"}, Debounce: -time.Second}, "Debounce"},
		{"empty dir", watch.Config{Dirs: []string{""}}, "Dirs[0] is empty"},
		{"empty file", watch.Config{Files: []string{"/a", ""}}, "Files[1] is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := watch.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func BenchmarkDebounceToChange(b *testing.B) {
	root := b.TempDir()
	f := filepath.Join(root, "bench.cfg.lua")
	writeFile(b, f, "0")
	w := start(b, watch.Config{Dirs: []string{root}, Rescan: -1, Logger: zap.NewNop()}) // default 100ms debounce
	for i := 0; b.Loop(); i++ {
		writeFile(b, f, strings.Repeat("z", i%64+1))
		waitFor(b, w, f)
	}
}

// A reader that is busy loses nothing: Changes fired while it is away are merged into the one
// it receives next. The test learns that the watcher fired from its debug log.
func TestSlowReaderGetsMergedChange(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a.cfg.lua"), filepath.Join(root, "b.cfg.lua")
	core, logs := observer.New(zap.DebugLevel)
	w := start(t, watch.Config{Dirs: []string{root}, Rescan: -1, Logger: zap.New(core)})
	fired := func() int { return logs.FilterMessage("watch: change").Len() }
	base := fired()

	waitUntil := func(n int) {
		t.Helper()
		wait.Until(t, waitLimit, fmt.Sprintf("%d changes", n-base), func() error {
			if got := fired(); got < n {
				return fmt.Errorf("watcher fired %d times", got-base)
			}
			return nil
		})
	}
	writeFile(t, a, "1")
	waitUntil(base + 1)
	writeFile(t, b, "1")
	waitUntil(base + 2)

	ch := waitFor(t, w, a)
	if !slices.Equal(ch.Paths, []string{a, b}) {
		t.Errorf("Paths = %v, want both %s and %s in one Change", ch.Paths, a, b)
	}
	noChange(t, w, 300*time.Millisecond)
}

// A secret file whose directory is mounted after start: the rescan finds it and from then on
// its directory is watched.
func TestFileInMissingDirectoryAppears(t *testing.T) {
	secrets := filepath.Join(t.TempDir(), "secrets")
	f := filepath.Join(secrets, "db_password")
	w := start(t, watch.Config{Dirs: []string{t.TempDir()}, Files: []string{f}, Rescan: 50 * time.Millisecond})

	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, "pw-1")
	waitFor(t, w, f)
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, f)
}
