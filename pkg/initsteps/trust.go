package initsteps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
// move what they do not own there). A link under dir is judged by what it
// points to. A dir that does not exist has no problems of its own, but the
// directories above it are checked: whoever can write there can create it.
// The error is for a tree that cannot be read at all.
func TreeProblems(dir string) ([]string, error) {
	var problems []string
	note := func(path string, fi fs.FileInfo, above bool) {
		if p := untrusted(fi, above); p != "" {
			problems = append(problems, fmt.Sprintf("%q %s", path, p))
		}
	}
	dir = filepath.Clean(dir)
	for _, a := range ancestors(dir) {
		fi, err := os.Lstat(a)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		note(a, fi, true)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
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
			if fi, err = os.Stat(path); err != nil {
				return nil // a dangling link changes nothing the tree loads
			}
		}
		note(path, fi, false)
		return nil
	})
	return problems, err
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
