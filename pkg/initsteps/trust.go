package initsteps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// maxTrustProblems bounds the paths a trust report names; the rest are counted.
const maxTrustProblems = 5

// TreeProblems lists what lets a user other than root (or the entrypoint's
// own user) change the tree at dir: dir itself or anything under it owned by
// another user, or writable by group (other than root's group) or others,
// and any directory above it that such a user could use to swap dir for
// another (a sticky directory such as /tmp is fine above it: others cannot
// move what they do not own there). A dir that does not exist has no
// problems of its own, but the directories above it are checked: whoever
// can write there can create it. The error is for a tree that cannot be read
// at all.
//
// A symbolic link (dir itself, or one under it) is judged twice. By who
// could replace it: the directory that holds it (checked like every
// directory of the tree, or above it) and its own owner (another user's link
// in a sticky directory is theirs to swap). And by where it points: the
// target, every directory above the target (whoever can write one of them
// can replace what the link reaches) and, for a directory, the whole tree
// under it, since the loader reads through the link. A dangling link changes
// nothing the tree loads. Kubernetes' ConfigMap volumes (a root-owned
// ..data link to a root-owned ..<timestamp> directory, each name a link
// through ..data) pass: every link, holder and target is root's.
func TreeProblems(dir string) ([]string, error) {
	t := &trustWalk{seen: map[string]bool{}}
	err := t.tree(filepath.Clean(dir), "")
	return t.problems, err
}

// trustWalk collects the problems of a tree and of every tree its links
// reach; seen holds the resolved directories already walked (links may
// form cycles).
type trustWalk struct {
	problems []string
	seen     map[string]bool
}

func (t *trustWalk) note(path, via string, fi fs.FileInfo, above bool) {
	if p := untrusted(fi, above); p != "" {
		t.add(fmt.Sprintf("%q%s %s", path, via, p))
	}
}

// tree checks the directories above dir and everything under it; via names
// the link that led here ("" for the tree itself) for the messages.
func (t *trustWalk) tree(dir, via string) error {
	above := ancestors(dir)
	if real, err := filepath.EvalSymlinks(filepath.Dir(dir)); err == nil && real != filepath.Dir(dir) {
		// A link on the way (/etc/x -> /srv/x): the directories it leads
		// through decide who can swap the tree too.
		above = append(above, append(ancestors(real), real)...)
	}
	for _, a := range above {
		fi, err := os.Lstat(a)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 { // its mode means nothing; its owner might
			t.linkOwner(a, via, fi)
			continue
		}
		t.note(a, via, fi, true)
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == dir {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return t.link(path, via, fi)
		}
		if fi.IsDir() {
			if t.seen[path] {
				return fs.SkipDir
			}
			t.seen[path] = true
		}
		t.note(path, via, fi, false)
		return nil
	})
}

// linkOwner notes a link owned by another user: in a sticky directory it is
// theirs to replace.
func (t *trustWalk) linkOwner(path, via string, lfi fs.FileInfo) {
	if st, ok := lfi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		t.add(fmt.Sprintf("%q%s is a link owned by uid %d", path, via, st.Uid))
	}
}

// add records a problem once.
func (t *trustWalk) add(p string) {
	if !slices.Contains(t.problems, p) {
		t.problems = append(t.problems, p)
	}
}

// link judges the link at path (lfi its own Lstat): its owner, then what it
// points to.
func (t *trustWalk) link(path, via string, lfi fs.FileInfo) error {
	t.linkOwner(path, via, lfi)
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil // dangling, or a loop: nothing the tree loads
	}
	fi, err := os.Stat(target)
	if err != nil {
		return nil
	}
	if via == "" {
		via = fmt.Sprintf(" (through the link %q)", path)
	}
	if fi.IsDir() {
		if t.seen[target] {
			return nil
		}
		return t.tree(target, via)
	}
	for _, a := range ancestors(target) {
		afi, err := os.Lstat(a)
		if err != nil {
			return err
		}
		t.note(a, via, afi, true)
	}
	t.note(path, "", fi, false)
	return nil
}

// ancestors are the directories above dir, from "/" down.
func ancestors(dir string) []string {
	var out []string
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		out = append([]string{p}, out...)
		if p == filepath.Dir(p) {
			return out
		}
	}
}

// untrusted says why fi lets another user change it, or "". above is for a
// directory above the tree, where the sticky bit keeps others from moving
// root's entries.
func untrusted(fi fs.FileInfo, above bool) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Sprintf("is owned by uid %d", st.Uid)
	}
	perm := fi.Mode().Perm()
	if above && fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 {
		return ""
	}
	switch {
	case perm&0o002 != 0:
		return "is writable by others"
	case perm&0o020 != 0 && st.Gid != 0:
		return fmt.Sprintf("is writable by group %d", st.Gid)
	}
	return ""
}

// CheckTrees looks at the config tree and the custom directory: whoever can
// change them decides what the server runs. In production a tree another
// user can change is a configuration error naming the path and the fix;
// elsewhere each problem is returned as a warning.
func CheckTrees(st *settings.Settings) (warnings []string, err error) {
	var errs []error
	for _, t := range []struct{ varName, dir string }{
		{"PROSODY_CONFIG_DIR", st.ConfigDir},
		{"PROSODY_CUSTOM_DIR", st.CustomDir},
	} {
		problems, perr := TreeProblems(t.dir)
		if perr != nil {
			return nil, fmt.Errorf("%s (%s): check who can change it: %w", t.varName, t.dir, perr)
		}
		if len(problems) == 0 {
			continue
		}
		what := strings.Join(problems[:min(len(problems), maxTrustProblems)], "; ")
		if n := len(problems) - maxTrustProblems; n > 0 {
			what += fmt.Sprintf("; and %d more", n)
		}
		msg := fmt.Sprintf("%s (%s) can be changed by a user other than root: %s; whoever can write there decides "+
			"what the server runs: make it and the directories above it root's and not writable by group or others "+
			"(chown -R root:root %s && chmod -R go-w %s)", t.varName, t.dir, what, t.dir, t.dir)
		if st.Environment == "production" {
			errs = append(errs, errors.New(msg))
			continue
		}
		warnings = append(warnings, msg+"; PROSODY_ENVIRONMENT=production refuses to start like this")
	}
	if len(errs) > 0 {
		return warnings, configErr(errors.Join(errs...))
	}
	return warnings, nil
}
