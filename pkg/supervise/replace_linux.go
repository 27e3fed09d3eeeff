package supervise

import (
	"fmt"
	"os"
	"syscall"
)

// ExecReplace replaces the entrypoint's process with the program name, as
// cred when it is not nil (supplementary groups exactly cred.Groups, then
// gid, then uid), keeping its terminal and its pid: what a wrapper invoked
// by `docker exec` does, where nothing is left to supervise. name is searched in env's PATH
// as LookPath searches it (with its errors), except that a file that is the
// running executable itself is skipped: the prosodyctl wrapper first in PATH
// is a link to the entrypoint, and the program it stands for comes after it.
// It returns only when the program could not be started.
func ExecReplace(name string, args, env []string, cred *Credential) error {
	path, err := lookPathNotSelf(name, env)
	if err != nil {
		return err
	}
	if cred != nil {
		// syscall's (not x/sys/unix's) set the ids of every thread of the process.
		groups := make([]int, len(cred.Groups))
		for i, g := range cred.Groups {
			groups[i] = int(g)
		}
		// Exactly cred's groups: none of the entrypoint's (root's) stays.
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("set supplementary groups %v: %w", cred.Groups, err)
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
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the running executable: %w", err)
	}
	selfInfo, err := os.Stat(self)
	if err != nil {
		return "", fmt.Errorf("find the running executable: %w", err)
	}
	return lookPathExcept(name, env, selfInfo)
}
