package listeners

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// Set is the listening sockets the entrypoint holds for Prosody. Its methods
// are safe for concurrent use. The zero value is not usable: call Open.
type Set struct {
	mu sync.Mutex
	// held are the sockets the running (or last) Prosody got, in order.
	held []*socket
	// next, when not nil, is the set for the next start (Prepare); it
	// shares the sockets of held whose interface and port it keeps.
	next []*socket
	// closed: Close was called; Files returns nothing from then on.
	closed bool
}

// socket is one bound, listening socket.
type socket struct {
	spec Spec
	file *os.File
}

// Open binds and listens on every spec, in order, and returns the Set that
// holds them. A spec whose address does not exist here (EADDRNOTAVAIL, or
// EAFNOSUPPORT for IPv6 on a host without it) is left to Prosody, which meets
// the same and logs it, and is returned in skipped with why. A port in use or
// one that needs a privilege the entrypoint lacks is a *BindError, and then
// nothing stays bound.
func Open(specs []Spec) (s *Set, skipped []Skipped, err error) {
	socks, skipped, err := bindAll(specs, nil)
	if err != nil {
		return nil, nil, err
	}
	return &Set{held: socks}, skipped, nil
}

// Skipped is a spec left to Prosody, and why.
type Skipped struct {
	Spec Spec
	Err  error
}

// bindAll binds specs, reusing the sockets of keep with the same key; on a
// *BindError it closes what it bound (never what it reused).
func bindAll(specs []Spec, keep []*socket) ([]*socket, []Skipped, error) {
	var (
		out     []*socket
		fresh   []*socket
		skipped []Skipped
	)
	for _, sp := range specs {
		if i := slices.IndexFunc(keep, func(k *socket) bool { return k.spec.Key() == sp.Key() }); i >= 0 {
			out = append(out, &socket{spec: sp, file: keep[i].file})
			continue
		}
		f, err := bind(sp)
		switch {
		case err == nil:
			sk := &socket{spec: sp, file: f}
			out, fresh = append(out, sk), append(fresh, sk)
		case errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EAFNOSUPPORT):
			skipped = append(skipped, Skipped{Spec: sp, Err: err})
		default:
			for _, sk := range fresh {
				sk.file.Close()
			}
			return nil, nil, &BindError{Spec: sp, Err: err}
		}
	}
	return out, skipped, nil
}

// bind makes one listening TCP socket as Prosody would (SO_REUSEADDR; an IPv6
// one IPv6-only, so "*" and "::" can share a port), non-blocking as Prosody's
// event loop needs it. The file is made from the descriptor while it is
// still blocking, so Go's poller never registers it (the entrypoint never
// accepts on it) and File.Fd does not change its mode; O_NONBLOCK is set after.
func bind(sp Spec) (*os.File, error) {
	host := sp.Interface
	if host == "*" {
		host = "0.0.0.0"
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("interface %q is not an IP address", sp.Interface)
	}
	var (
		family int
		sa     unix.Sockaddr
	)
	switch {
	case sp.IPv6() && addr.Is6():
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: sp.Port, Addr: addr.As16()}
	case !sp.IPv6() && addr.Is4():
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: sp.Port, Addr: addr.As4()}
	default:
		return nil, fmt.Errorf("interface %q is not an IP address in canonical form", sp.Interface)
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return nil, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return nil, os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	// The kernel caps the backlog at net.core.somaxconn: room for the
	// connections that arrive while Prosody restarts.
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	f := os.NewFile(uintptr(fd), "listener "+sp.String())
	if err := unix.SetNonblock(fd, true); err != nil {
		f.Close()
		ok = true // closed by f
		return nil, os.NewSyscallError("set non-blocking", err)
	}
	ok = true
	return f, nil
}

// hint is the end of a BindError's message: what to do.
func hint(e *BindError) string {
	switch {
	case errors.Is(e.Err, unix.EADDRINUSE):
		return "another process listens on this port; stop it or choose another port"
	case errors.Is(e.Err, unix.EACCES):
		return "ports below 1024 need root or CAP_NET_BIND_SERVICE for the entrypoint (run the container as root: it drops to the prosody user for Prosody), or choose a port from 1024 on"
	}
	return "check the port and interface settings (PROSODY_INTERFACES)"
}

// Files returns what the next Prosody inherits, for supervise.Config.ExtraFiles:
// the files, passed as descriptors 3, 4, … in order, and their LISTEN_FDS and
// LISTEN_FDNAMES. A set Prepare made becomes the held one here, and the sockets
// only the old one had are closed: the old Prosody has exited by now (the
// supervisor starts a child only when none runs). The files stay open until
// the next Files or Close. After Close it returns nothing.
func (s *Set) Files() ([]*os.File, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil
	}
	if s.next != nil {
		for _, old := range s.held {
			if !slices.ContainsFunc(s.next, func(n *socket) bool { return n.file == old.file }) {
				old.file.Close()
			}
		}
		s.held, s.next = s.next, nil
	}
	files := make([]*os.File, len(s.held))
	specs := make([]Spec, len(s.held))
	for i, sk := range s.held {
		files[i], specs[i] = sk.file, sk.spec
	}
	return files, Env(specs)
}

// Prepare binds the sockets of specs that the Set does not hold yet, for the
// next start of Prosody (Files switches to them): sockets on an interface and
// port both sets have stay open and keep their queued connections. A port in
// use is a *BindError and leaves the Set as it was. A second Prepare before
// the next start replaces the first. It returns the specs left to Prosody.
func (s *Set) Prepare(specs []Spec) ([]Skipped, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("listeners: prepare after close")
	}
	keep := append(slices.Clone(s.held), s.next...)
	next, skipped, err := bindAll(specs, keep)
	if err != nil {
		return nil, err
	}
	s.discardLocked(next)
	if next == nil {
		next = []*socket{}
	}
	s.next = next
	return skipped, nil
}

// Discard drops what Prepare bound: the next Prosody gets the held set again.
func (s *Set) Discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discardLocked(nil)
	s.next = nil
}

// discardLocked closes the sockets of s.next that neither held nor keep uses.
func (s *Set) discardLocked(keep []*socket) {
	for _, n := range s.next {
		used := func(o *socket) bool { return o.file == n.file }
		if !slices.ContainsFunc(s.held, used) && !slices.ContainsFunc(keep, used) {
			n.file.Close()
		}
	}
}

// Specs are the sockets held for the running (or next, if none runs) Prosody, in order.
func (s *Set) Specs() []Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Spec, len(s.held))
	for i, sk := range s.held {
		out[i] = sk.spec
	}
	return out
}

// Queued returns, per held socket in Specs order, the connections waiting in
// its accept queue (accepted by the kernel, not yet by Prosody), from
// TCP_INFO; -1 where it cannot be read.
func (s *Set) Queued() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, len(s.held))
	for i, sk := range s.held {
		out[i] = -1
		rc, err := sk.file.SyscallConn()
		if err != nil {
			continue
		}
		_ = rc.Control(func(fd uintptr) {
			// For a listening socket the kernel reports the accept queue's
			// length in tcpi_unacked (and its limit in tcpi_sacked).
			if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				out[i] = int(ti.Unacked)
			}
		})
	}
	return out
}

// Close closes every socket; the Set gives no files after it.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.discardLocked(nil)
	var errs []error
	for _, sk := range s.held {
		errs = append(errs, sk.file.Close())
	}
	s.held, s.next = nil, nil
	return errors.Join(errs...)
}
