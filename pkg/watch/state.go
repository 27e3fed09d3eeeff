package watch

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// fingerprint identifies one version of a file without reading it. Kubernetes' atomic writer
// and editors that rename over a file give a new inode; an in-place write changes size or
// mtime (nanoseconds).
type fingerprint struct {
	size    int64
	mtimeNs int64
	mode    fs.FileMode
	ino     uint64
	dev     uint64
}

func fingerprintOf(fi fs.FileInfo) fingerprint {
	ino, dev := inode(fi)
	return fingerprint{size: fi.Size(), mtimeNs: fi.ModTime().UnixNano(), mode: fi.Mode(), ino: ino, dev: dev}
}

// state is the last seen fingerprint of every watched file, and the fsnotify watches. It is
// owned by the Run goroutine.
type state struct {
	roots   []string            // Config.Dirs
	files   []string            // Config.Files
	parents map[string][]string // parent dir → Config.Files in it
	fsw     *fsnotify.Watcher
	log     *zap.Logger
	fileSet map[string]bool        // Config.Files, checked only by checkFile
	seen    map[string]fingerprint // present files (tree files and Config.Files)
}

func newState(roots, files []string, fsw *fsnotify.Watcher, log *zap.Logger) *state {
	s := &state{roots: roots, files: files, parents: make(map[string][]string), fsw: fsw, log: log,
		fileSet: make(map[string]bool), seen: make(map[string]fingerprint)}
	for _, f := range files {
		s.fileSet[f] = true
		d := filepath.Dir(f)
		s.parents[d] = append(s.parents[d], f)
	}
	return s
}

// ignored reports whether a name is an editor's temporary or backup file: vim swap files
// (.swp, .swx, .swo…), backups ending in "~", vim's write test file "4913", emacs lock (".#x")
// and autosave ("#x#") files.
func ignored(base string) bool {
	switch {
	case base == "4913", strings.HasSuffix(base, "~"), strings.HasPrefix(base, ".#"):
		return true
	case len(base) > 2 && base[0] == '#' && base[len(base)-1] == '#':
		return true
	case len(filepath.Ext(base)) == 4 && strings.HasPrefix(filepath.Ext(base), ".sw"):
		return true
	}
	return false
}

// internal reports whether a name belongs to Kubernetes' atomic writer (..data, ..2026_…).
func internal(base string) bool { return strings.HasPrefix(base, "..") }

// inTree reports whether p is a root of Config.Dirs or below one.
func (s *state) inTree(p string) bool {
	for _, r := range s.roots {
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) || r == string(filepath.Separator) {
			return true
		}
	}
	return false
}

// scan fingerprints the whole watched set, (re)adds every watch, and returns the paths whose
// fingerprint differs from the last one seen. The first scan reports what exists; Run discards
// it.
func (s *state) scan() []string {
	var changed []string
	for _, r := range s.roots {
		s.syncSubtree(r, &changed)
	}
	for d := range s.parents {
		s.watchDir(d)
	}
	for _, f := range s.files {
		s.checkFile(f, &changed)
	}
	return sortedUnique(changed)
}

// event handles one fsnotify event and returns the watched paths it changed.
func (s *state) event(ev fsnotify.Event) []string {
	name := filepath.Clean(ev.Name)
	base := filepath.Base(name)
	if ignored(base) {
		return nil
	}
	dir := filepath.Dir(name)
	var changed []string
	if s.inTree(name) {
		if internal(base) {
			// A `..data` swap: the visible entries are symlinks whose targets just changed.
			s.syncSubtree(dir, &changed)
		} else {
			s.syncSubtree(name, &changed)
		}
	}
	// Any event in a Files parent (the file itself, a rename over it, a `..data` swap)
	// re-checks the files there.
	for _, f := range s.parents[dir] {
		s.checkFile(f, &changed)
	}
	for _, f := range s.parents[name] { // the parent itself was removed or recreated
		s.watchDir(name)
		s.checkFile(f, &changed)
	}
	return sortedUnique(changed)
}

// syncSubtree brings the fingerprints of p (a file, or a directory walked recursively) up to
// date, adding watches on the directories found, and appends what changed.
func (s *state) syncSubtree(p string, changed *[]string) {
	fresh := make(map[string]fingerprint)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		if !ignored(filepath.Base(p)) && !internal(filepath.Base(p)) {
			fresh[p] = fingerprintOf(fi)
		}
	} else if err == nil {
		s.walk(p, fresh)
	}
	prefix := p + string(filepath.Separator)
	for k := range s.seen {
		if k != p && !strings.HasPrefix(k, prefix) {
			continue
		}
		if _, ok := fresh[k]; !ok && !s.fileSet[k] {
			delete(s.seen, k)
			*changed = append(*changed, k)
		}
	}
	for k, fp := range fresh {
		s.update(k, fp, changed)
	}
}

// walk fingerprints every file below dir into out and watches every directory. It does not
// enter Kubernetes' "..*" directories, but it does follow a symlink to a directory under its
// visible name (once per real directory, so a link loop ends): a ConfigMap whose items have
// nested paths is mounted as `profiles -> ..data/profiles`, and only walking through that
// link sees the files change when `..data` is swapped.
func (s *state) walk(dir string, out map[string]fingerprint) {
	s.walkVisited(dir, out, map[string]bool{})
}

func (s *state) walkVisited(dir string, out map[string]fingerprint, visited map[string]bool) {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		if visited[real] {
			return
		}
		visited[real] = true
	}
	// A trailing separator makes WalkDir enter dir even when dir itself is a symlink.
	root := dir + string(filepath.Separator)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root {
			p = dir
		}
		if err != nil {
			if p == dir {
				return err
			}
			s.log.Debug("watch: skip unreadable path", zap.String("path", p), zap.Error(err))
			return nil
		}
		base := d.Name()
		if d.IsDir() {
			if p != dir && internal(base) {
				return fs.SkipDir
			}
			s.watchDir(p)
			return nil
		}
		if ignored(base) || internal(base) {
			return nil
		}
		fi, err := os.Stat(p) // follow symlinks: a ConfigMap key is a symlink into ..data
		if err != nil {
			return nil // a dangling link
		}
		if fi.IsDir() {
			s.walkVisited(p, out, visited)
			return nil
		}
		out[p] = fingerprintOf(fi)
		return nil
	})
	if err != nil {
		s.log.Debug("watch: skip directory", zap.String("dir", dir), zap.Error(err))
	}
}

func (s *state) watchDir(dir string) {
	// Adding a watched directory again only refreshes its mask; a missing directory is
	// retried by the next rescan.
	if err := s.fsw.Add(dir); err != nil {
		s.log.Debug("watch: cannot watch directory yet", zap.String("dir", dir), zap.Error(err))
	}
}

// checkFile compares a Config.Files entry with its last fingerprint, following symlinks.
func (s *state) checkFile(f string, changed *[]string) {
	fi, err := os.Stat(f)
	if err != nil || fi.IsDir() {
		if _, ok := s.seen[f]; ok {
			delete(s.seen, f)
			*changed = append(*changed, f)
		}
		return
	}
	s.update(f, fingerprintOf(fi), changed)
}

func (s *state) update(p string, fp fingerprint, changed *[]string) {
	if old, ok := s.seen[p]; ok && old == fp {
		return
	}
	s.seen[p] = fp
	*changed = append(*changed, p)
}

func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	sort.Strings(in)
	out := in[:1]
	for _, p := range in[1:] {
		if p != out[len(out)-1] {
			out = append(out, p)
		}
	}
	return out
}
