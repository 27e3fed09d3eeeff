package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ExecReplace replaces the entrypoint's process with the program name, as
// cred when it is not nil (supplementary groups dropped, then gid, then uid),
// keeping its terminal and its pid: what a wrapper invoked by `docker exec`
// does, where nothing is left to supervise. name is searched in env's PATH
// like LookPath, except that a file that is the running executable itself
// is skipped: the prosodyctl wrapper first in PATH is a link to the
// entrypoint, and the program it stands for comes after it. It returns only
// when the program could not be started.
func ExecReplace(name string, args, env []string, cred *Credential) error {
	path, err := lookPathNotSelf(name, env)
	if err != nil {
		return err
	}
	if cred != nil {
		// syscall's (not x/sys/unix's) set the ids of every thread of the process.
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("drop supplementary groups: %w", err)
		}
		if err := syscall.Setgid(int(cred.GID)); err != nil {
			return fmt.Errorf("setgid %d: %w", cred.GID, err)
		}
		if err := syscall.Setuid(int(cred.UID)); err != nil {
			return fmt.Errorf("setuid %d: %w", cred.UID, err)
		}
	}
	if err := syscall.Exec(path, append([]string{name}, args...), env); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// lookPathNotSelf is lookPath, skipping the running executable.
func lookPathNotSelf(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the running executable: %w", err)
	}
	selfInfo, err := os.Stat(self)
	if err != nil {
		return "", fmt.Errorf("find the running executable: %w", err)
	}
	pathVar := os.Getenv("PATH")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || os.SameFile(fi, selfInfo) || fi.Mode()&0o111 == 0 {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("%s: %w (in PATH %q, other than the entrypoint itself)", name, errors.New("not found"), pathVar)
}
