package luacfg

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// prosodySourceFiles are the files of Prosody's source directory that
// `prosodyctl check config` runs: its version, the start-up, the config
// loader, the module lists and the checks themselves.
var prosodySourceFiles = []string{
	"prosody.version", "util/startup.lua", "util/prosodyctl.lua", "util/prosodyctl/check.lua",
	"core/configmanager.lua", "core/modulemanager.lua", "util/dependencies.lua",
}

// packageDB is Debian's record of installed packages: it changes whenever a
// package (Prosody, LuaSec, any Lua library prosodyctl loads) is installed,
// upgraded or removed. Absent elsewhere, which the identity records too.
const packageDB = "/var/lib/dpkg/status"

// sourceDirRe is compiled at first use, like every pattern of the product: init
// time is every command's start-up.
var sourceDirRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\s*CFG_SOURCEDIR\s*=\s*'([^']*)'`)
})

// CheckerFiles returns the files whose identity (path, inode, size, times)
// stands for the checkers Check would run with opt: the luac it finds, every
// prosodyctl on opt.Env's PATH (a wrapper first in PATH runs the next one),
// for each of those that is Prosody's launcher script the source files it
// names in CFG_SOURCEDIR, and the package database. A change to any of them
// may change the verdict. The error is luac not found, as Check reports it.
func CheckerFiles(opt CheckOptions) ([]string, error) {
	luac := opt.luac()
	luacPath, err := supervise.LookPath(luac, opt.Env)
	if err != nil {
		return nil, fmt.Errorf("%s not found: %w", luac, err)
	}
	files := []string{luacPath, packageDB}
	if self, err := os.Executable(); err == nil {
		files = append(files, self) // Check's reading of the exit codes is ours
	}
	if opt.SkipProsodyctl {
		return files, nil
	}
	var ctls []string
	if opt.Prosodyctl != "" && strings.Contains(opt.Prosodyctl, "/") {
		ctls = append(ctls, opt.Prosodyctl)
	}
	name := opt.prosodyctl()
	if strings.Contains(name, "/") {
		name = "prosodyctl"
	}
	for _, dir := range filepath.SplitList(envValue(opt.Env, "PATH")) {
		if dir != "" {
			ctls = append(ctls, filepath.Join(dir, name))
		}
	}
	for _, ctl := range ctls {
		files = append(files, ctl)
		if src := sourceDir(ctl); src != "" {
			for _, f := range prosodySourceFiles {
				files = append(files, filepath.Join(src, f))
			}
		}
	}
	return slices.Compact(files), nil
}

// sourceDir returns the CFG_SOURCEDIR a prosodyctl launcher script sets, or
// "" when path is not one.
func sourceDir(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	if m := sourceDirRe().FindSubmatch(head[:n]); m != nil {
		return string(m[1])
	}
	return ""
}

// envValue returns the value of name in env (the last one wins, as in
// exec), or this process's own when env is nil.
func envValue(env []string, name string) string {
	if env == nil {
		return os.Getenv(name)
	}
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}
