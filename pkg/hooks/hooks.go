// Package hooks finds and runs the operator's init hooks: the files of a
// directory (by convention /docker-entrypoint.d) that run, in lexical order of
// their names, after the built-in init stages and before Prosody starts.
//
// What runs:
//   - an executable regular file (any owner execute bit) is executed directly;
//   - a `*.sh` file that is not executable is run with `sh FILE`. The official
//     Docker images *source* such files into their shell entrypoint; a Go
//     process cannot be sourced into, so a hook cannot change the entrypoint's
//     own environment: it runs in its own `sh`;
//   - anything else (READMEs, data files, directories, dot files) is skipped,
//     and the caller is told so it can log the skip.
//
// A hook's stdout and stderr go where the caller says; it inherits the
// caller's working directory and identity (root in a container started as
// root). A hook that exits non-zero, is killed, or cannot be started fails
// with an *ExitError naming it and its code.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// Hook is one file of the hooks directory that will run.
type Hook struct {
	// Name is the file name: it orders the hooks and names them in logs.
	Name string
	// Path is the absolute path of the file.
	Path string
	// Shell is true for a non-executable *.sh file, which runs as `sh Path`.
	Shell bool
}

// Skipped is a file of the hooks directory that does not run, and why.
type Skipped struct {
	Name   string
	Reason string
}

// List returns the hooks of dir in lexical order of their names, and the
// files it skips. A dir that does not exist has no hooks (nil, nil, nil):
// the directory is optional. Any other error reading it is returned.
// Symbolic links are followed (Kubernetes ConfigMap volumes are links).
func List(dir string) ([]Hook, []Skipped, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read hooks directory %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names) // ReadDir sorts too; the order is the contract, so say it here
	var hooks []Hook
	var skipped []Skipped
	for _, name := range names {
		if strings.HasPrefix(name, ".") {
			continue // ..data and friends of a ConfigMap volume, editor files
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			return nil, nil, fmt.Errorf("hook %s: %w", path, err)
		}
		switch {
		case !fi.Mode().IsRegular():
			skipped = append(skipped, Skipped{Name: name, Reason: "not a regular file"})
		case fi.Mode().Perm()&0o111 != 0:
			hooks = append(hooks, Hook{Name: name, Path: path})
		case strings.HasSuffix(name, ".sh"):
			hooks = append(hooks, Hook{Name: name, Path: path, Shell: true})
		default:
			skipped = append(skipped, Skipped{Name: name, Reason: "not executable and not *.sh; chmod +x it to run it"})
		}
	}
	return hooks, skipped, nil
}

// ExitError is the error of a hook that did not succeed.
type ExitError struct {
	Hook string
	// Code is the hook's exit code; 128+N when signal N killed it; 126 when it
	// could not be executed, 127 when its interpreter was not found.
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("init hook %s failed with exit code %d: %v", e.Hook, e.Code, e.Err)
}

func (e *ExitError) Unwrap() error { return e.Err }

// RunOptions are what a hook runs with.
type RunOptions struct {
	// Env is the hook's whole environment; nil means an empty one. Use Env to
	// build it without secrets.
	Env []string
	// Stdout and Stderr receive the hook's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Run runs h and waits for it. When ctx ends the hook is killed. A failure is
// an *ExitError.
func (h Hook) Run(ctx context.Context, o RunOptions) error {
	name, args := h.Path, []string(nil)
	if h.Shell {
		name, args = "sh", []string{h.Path}
	}
	env := o.Env
	if env == nil {
		env = []string{}
	}
	_, code, err := supervise.Command(ctx, supervise.AuxCommand{Path: name, Args: args, Env: env},
		orDiscard(o.Stdout), orDiscard(o.Stderr))
	if err == nil && code == 0 {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("exit status %d", code)
	}
	return &ExitError{Hook: h.Name, Code: code, Err: err}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Env returns environ without the variables named in drop (exact names, for
// example secret values such as PROSODY_DB_PASSWORD); VAR_FILE forms are kept
// unless named too, so a hook can read a secret from its file.
func Env(environ []string, drop []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		dropped := false
		for _, d := range drop {
			if name == d {
				dropped = true
				break
			}
		}
		if !dropped {
			out = append(out, kv)
		}
	}
	return out
}
