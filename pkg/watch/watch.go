// Package watch reports changes to the files the entrypoint renders Prosody's config from:
// the directories of the config tree, certificate files and *_FILE secret files.
//
// It watches directories, never single files, with fsnotify: an editor that renames a new file
// over the old one, and a Kubernetes ConfigMap or Secret volume that swaps its `..data` symlink
// (so the file's own path never gets an event), are both seen, because every event in a
// directory makes the watcher compare a fingerprint (size, mtime, inode, device, mode, after
// following symlinks) of the watched files there. Events are debounced into one Change, and a
// periodic rescan of the whole watched set is the backstop for anything fsnotify misses
// (directories created after start, queue overflows, filesystems without inotify).
package watch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Defaults for the zero values of Config.
const (
	DefaultDebounce = 100 * time.Millisecond
	DefaultRescan   = 30 * time.Second
	// maxWaitFactor caps the debounce: a continuous stream of events still gives a Change
	// every maxWaitFactor × Debounce.
	maxWaitFactor = 10
)

// Config says what to watch. Paths are used as given (cleaned); Change reports them in the same
// form.
type Config struct {
	// Dirs are roots of the config tree (core, profiles, features, environments, custom,
	// legacy…). Each is watched recursively, including subdirectories created later. A root
	// that does not exist yet is skipped (debug log) and picked up by a rescan once it exists.
	// Entries whose names start with ".." (Kubernetes' atomic-writer internals) are not
	// reported or descended into, but an event on them makes the watcher re-check their
	// directory.
	Dirs []string
	// Files are single files (certificates, keys, *_FILE secrets). Their parent directory is
	// watched and any event there re-checks them, so a rename over the file or a `..data`
	// swap is seen. A file may be missing; its appearance is a change.
	Files []string
	// Debounce is how long the watcher waits after the last event before it sends a Change
	// (trailing edge). A stream of events that never pauses still gives a Change every
	// 10 × Debounce. Zero means DefaultDebounce; negative is an error.
	Debounce time.Duration
	// Rescan is the interval of the backstop rescan, which fingerprints the whole watched set
	// and reports what differs. Zero means DefaultRescan; negative disables it.
	Rescan time.Duration
	// Logger receives debug and warning logs. Nil means no logging.
	Logger *zap.Logger
}

// Change is one debounced batch of changes.
type Change struct {
	// Paths are the watched paths that changed (created, written, replaced or removed),
	// deduplicated and sorted. Paths of Config.Files are reported exactly as configured
	// (cleaned).
	Paths []string
	// At is when the Change was sent.
	At time.Time
}

// Watcher watches the paths of its Config. Create it with New, run it with Run, read Changes.
type Watcher struct {
	dirs     []string
	files    []string
	debounce time.Duration
	maxWait  time.Duration
	rescan   time.Duration
	log      *zap.Logger
	changes  chan Change
	started  atomic.Bool
}

// New validates cfg and returns a Watcher. Nothing is watched until Run.
func New(cfg Config) (*Watcher, error) {
	if len(cfg.Dirs) == 0 && len(cfg.Files) == 0 {
		return nil, errors.New("watch: config has no Dirs and no Files: give at least one path to watch")
	}
	if cfg.Debounce < 0 {
		return nil, fmt.Errorf("watch: Debounce is %s: it must be zero (default %s) or positive", cfg.Debounce, DefaultDebounce)
	}
	w := &Watcher{
		debounce: cfg.Debounce,
		rescan:   cfg.Rescan,
		log:      cfg.Logger,
		changes:  make(chan Change),
	}
	if w.debounce == 0 {
		w.debounce = DefaultDebounce
	}
	w.maxWait = maxWaitFactor * w.debounce
	if w.rescan == 0 {
		w.rescan = DefaultRescan
	}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	var err error
	if w.dirs, err = cleanPaths("Dirs", cfg.Dirs); err != nil {
		return nil, err
	}
	if w.files, err = cleanPaths("Files", cfg.Files); err != nil {
		return nil, err
	}
	return w, nil
}

func cleanPaths(field string, in []string) ([]string, error) {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for i, p := range in {
		if p == "" {
			return nil, fmt.Errorf("watch: %s[%d] is empty: give a file system path", field, i)
		}
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// Changes returns the channel on which Run sends each debounced Change. A Change is never
// dropped: while the reader is busy, later changes are merged into the one waiting to be
// received. The channel is closed when Run returns.
func (w *Watcher) Changes() <-chan Change { return w.changes }

// Run watches until ctx ends, then closes the fsnotify watcher, drains its channels, closes
// Changes and returns nil. It returns an error if fsnotify cannot start (for example the
// inotify instance limit) or if Run was already called; Changes is closed in every case.
// Changes made before Run starts are not reported.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("watch: Run called twice on one Watcher")
	}
	defer close(w.changes)

	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: start fsnotify: %w", err)
	}
	l := &loop{w: w, fsw: fsw, st: newState(w.dirs, w.files, fsw, w.log)}
	l.st.scan() // initial watches and fingerprints, nothing reported
	l.run(ctx)

	// Close makes fsnotify's reader stop and close both channels; drain what was queued.
	cerr := fsw.Close()
	for range fsw.Events {
	}
	for range fsw.Errors {
	}
	if cerr != nil {
		w.log.Warn("watch: close fsnotify", zap.Error(cerr))
	}
	return nil
}

// loop is the state of one Run: pending paths, the debounce timer and the undelivered Change.
type loop struct {
	w   *Watcher
	fsw *fsnotify.Watcher
	st  *state

	pending map[string]struct{}
	first   time.Time // when the oldest pending path was seen
	timer   *time.Timer
	out     *Change // a Change waiting for the reader
}

func (l *loop) run(ctx context.Context) {
	l.pending = make(map[string]struct{})
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	defer l.timer.Stop()

	var rescanC <-chan time.Time
	if l.w.rescan > 0 {
		t := time.NewTicker(l.w.rescan)
		defer t.Stop()
		rescanC = t.C
	}
	for {
		var send chan<- Change // nil (never ready) unless a Change waits
		var next Change
		if l.out != nil {
			send, next = l.w.changes, *l.out
		}
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-l.fsw.Events:
			if !ok {
				return
			}
			l.add(l.st.event(ev))
		case err, ok := <-l.fsw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: compare everything now rather than at the next rescan.
				l.w.log.Warn("watch: fsnotify queue overflowed, rescanning", zap.Error(err))
				l.add(l.st.scan())
				continue
			}
			l.w.log.Warn("watch: fsnotify error", zap.Error(err))
		case <-rescanC:
			changed := l.st.scan()
			if len(changed) > 0 {
				l.w.log.Debug("watch: rescan found changes fsnotify missed", zap.Strings("paths", changed))
			}
			l.add(changed)
		case <-l.timer.C:
			l.fire()
		case send <- next:
			l.out = nil
		}
	}
}

// add records changed paths and (re)arms the trailing-edge timer, capped at maxWait after the
// first pending path.
func (l *loop) add(paths []string) {
	if len(paths) == 0 {
		return
	}
	now := time.Now()
	if len(l.pending) == 0 {
		l.first = now
	}
	for _, p := range paths {
		l.pending[p] = struct{}{}
	}
	wait := l.w.debounce
	if left := l.first.Add(l.w.maxWait).Sub(now); left < wait {
		wait = max(left, 0)
	}
	l.timer.Reset(wait)
}

// fire turns the pending paths into a Change, merged into any Change the reader has not taken.
func (l *loop) fire() {
	if len(l.pending) == 0 {
		return
	}
	if l.out == nil {
		l.out = &Change{}
	}
	for _, p := range l.out.Paths {
		l.pending[p] = struct{}{}
	}
	paths := make([]string, 0, len(l.pending))
	for p := range l.pending {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	l.out.Paths, l.out.At = paths, time.Now()
	clear(l.pending)
	l.w.log.Debug("watch: change", zap.Strings("paths", paths))
}
