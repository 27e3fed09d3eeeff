// Package entrypointtest is for the programs that start the entrypoint binary
// against a real Prosody: the end-to-end tests, the soak and the benchmarks.
// It holds what they share: free loopback ports and the environment of a
// server rooted in one directory. It is not used by the product.
package entrypointtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Ports are the listeners of one entrypoint and its Prosody.
type Ports struct {
	C2S, S2S, HTTP, HTTPS, Health int
}

// handedOut remembers every port FreePorts returned in this process, so two
// servers started side by side never get the same one. It is the one piece of
// shared state here, and it only grows: a test process picks few ports.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePorts returns n distinct TCP ports free on 127.0.0.1. They are chosen
// below the kernel's ephemeral range (ip_local_port_range), so an outgoing
// connection of any process (Prosody's s2s attempts, DNS) cannot take one
// between the pick and the server's bind, and never twice in one process.
func FreePorts(n int) ([]int, error) {
	low := ephemeralLow()
	if low <= 11000 {
		return nil, fmt.Errorf("the ephemeral port range starts at %d: no room below it for test ports", low)
	}
	handedOut.Lock()
	defer handedOut.Unlock()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			return nil, fmt.Errorf("no free port found below %d after %d tries", low, tries)
		}
		p := 10000 + rand.IntN(low-10000)
		if handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // in use
		}
		l.Close()
		handedOut.ports[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when
// it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return low
}

// NewPorts picks the five ports of one server.
func NewPorts() (Ports, error) {
	p, err := FreePorts(5)
	if err != nil {
		return Ports{}, err
	}
	return Ports{C2S: p[0], S2S: p[1], HTTP: p[2], HTTPS: p[3], Health: p[4]}, nil
}

// Subdirs are the directories of a server's root, one per path setting.
var Subdirs = []string{"data", "runtime", "certs", "custom", "hooks"}

// MakeRoot creates root and its Subdirs, mode 0755 so the prosody user can
// enter them. root's parent gets search permission for group and others added
// (t.TempDir's parent is private); nothing else of its mode changes, so a
// parent such as /tmp keeps its sticky bit and permissions.
func MakeRoot(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	parent := filepath.Dir(root)
	fi, err := os.Stat(parent)
	if err != nil {
		return err
	}
	if mode := fi.Mode(); mode.Perm()&0o011 != 0o011 {
		keep := mode & (os.ModePerm | os.ModeSticky | os.ModeSetgid | os.ModeSetuid)
		if err := os.Chmod(parent, keep|0o011); err != nil {
			return err
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	for _, d := range Subdirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Env is the PROSODY_* environment of a development server for localhost on
// 127.0.0.1, with every path under root and the config tree at configDir.
// Callers add or override variables in the returned map.
func Env(root, configDir string, p Ports) map[string]string {
	return map[string]string{
		"PROSODY_PROFILE":       "development",
		"PROSODY_ENVIRONMENT":   "development",
		"PROSODY_DOMAIN":        "localhost",
		"PROSODY_INTERFACES":    "127.0.0.1",
		"PROSODY_C2S_PORT":      strconv.Itoa(p.C2S),
		"PROSODY_S2S_PORT":      strconv.Itoa(p.S2S),
		"PROSODY_HTTP_PORT":     strconv.Itoa(p.HTTP),
		"PROSODY_HTTPS_PORT":    strconv.Itoa(p.HTTPS),
		"PROSODY_HEALTH_LISTEN": "127.0.0.1:" + strconv.Itoa(p.Health),
		"PROSODY_CONFIG_DIR":    configDir,
		"PROSODY_CUSTOM_DIR":    filepath.Join(root, "custom"),
		"PROSODY_DATA_DIR":      filepath.Join(root, "data"),
		"PROSODY_RUNTIME_DIR":   filepath.Join(root, "runtime"),
		"PROSODY_CERTS_DIR":     filepath.Join(root, "certs"),
		"PROSODY_HOOKS_DIR":     filepath.Join(root, "hooks"),
		"PROSODY_LOG_FORMAT":    "json",
		"PROSODY_STOP_TIMEOUT":  "10s",
	}
}

// ServerEnv prepares a server rooted in root: it makes the directories
// (MakeRoot), picks the ports (NewPorts) and returns the environment (Env)
// with the config tree at configDir, and the ports.
func ServerEnv(root, configDir string) (map[string]string, Ports, error) {
	if err := MakeRoot(root); err != nil {
		return nil, Ports{}, err
	}
	p, err := NewPorts()
	if err != nil {
		return nil, Ports{}, err
	}
	return Env(root, configDir, p), p, nil
}

// Buffer is an io.Writer safe for concurrent use, for a child's output that the
// test reads while the child still writes. The zero value is empty and ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
