package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// proc is one process as /proc/<pid>/stat and cmdline show it.
type proc struct {
	PID     int
	PPID    int
	State   byte // R, S, D, Z, …
	Comm    string
	Cmdline string // arguments joined by spaces
}

// parseStat reads pid, comm, state and ppid from a /proc/<pid>/stat line. comm is
// in parentheses and may itself hold spaces and parentheses, so the fields after
// it are found from the last ')'.
func parseStat(line string) (proc, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return proc{}, fmt.Errorf("stat line %q: no (comm)", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return proc{}, fmt.Errorf("stat line %q: pid: %w", line, err)
	}
	rest := strings.Fields(line[end+1:])
	if len(rest) < 2 {
		return proc{}, fmt.Errorf("stat line %q: no state and ppid", line)
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return proc{}, fmt.Errorf("stat line %q: ppid: %w", line, err)
	}
	return proc{PID: pid, PPID: ppid, State: rest[0][0], Comm: line[open+1 : end]}, nil
}

// processes lists every process of the machine. Processes that end while the
// list is read are left out.
func processes() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []proc
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		p, err := parseStat(string(b))
		if err != nil {
			return nil, err
		}
		if c, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil {
			p.Cmdline = string(bytes.TrimRight(bytes.ReplaceAll(c, []byte{0}, []byte{' '}), " "))
		}
		out = append(out, p)
	}
	return out, nil
}

// zombieChildren returns the children of pid that are zombies.
func zombieChildren(pid int) ([]proc, error) {
	ps, err := processes()
	if err != nil {
		return nil, err
	}
	var out []proc
	for _, p := range ps {
		if p.PPID == pid && p.State == 'Z' {
			out = append(out, p)
		}
	}
	return out, nil
}

// mentioning returns the processes whose command line contains s (a server's
// directory: prosody runs with --config <dir>/runtime/…, and so do prosodyctl
// and the config checks), other than the caller itself.
func mentioning(s string) ([]proc, error) {
	ps, err := processes()
	if err != nil {
		return nil, err
	}
	var out []proc
	self := os.Getpid()
	for _, p := range ps {
		if p.PID != self && strings.Contains(p.Cmdline, s) {
			out = append(out, p)
		}
	}
	return out, nil
}

// fdCount is the number of open descriptors of pid.
func fdCount(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("count descriptors of pid %d: %w", pid, err)
	}
	return len(ents), nil
}

func describe(ps []proc) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("pid %d ppid %d %c %s (%s)", p.PID, p.PPID, p.State, p.Comm, p.Cmdline))
	}
	return strings.Join(parts, "; ")
}
