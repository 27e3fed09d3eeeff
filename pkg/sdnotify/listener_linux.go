package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxDatagram bounds one notification. systemd accepts messages of a few KiB;
// anything larger is truncated by the kernel and dropped by Run.
const maxDatagram = 16 * 1024

// Listener is a bound unixgram socket whose name is given to the child as
// NOTIFY_SOCKET. Create it with Listen; it is safe to call Close from any goroutine.
type Listener struct {
	conn      *net.UnixConn
	name      string // as given: a path, or "@name" for the abstract namespace
	closeOnce sync.Once
	closeErr  error
}

// Listen binds a unixgram socket at path, to be passed to the child as NOTIFY_SOCKET.
//
// A path starting with "@" names a Linux abstract socket: nothing appears on the
// filesystem and any process in the same network namespace may send to it (abstract
// sockets have no permissions; uid and gid are ignored). Prosody 13.0.1 with Debian's
// LuaSocket cannot use abstract names (connect fails with "Invalid argument" and
// Prosody exits 1), so give Prosody a socket file. Any other path is a socket file: a
// stale socket file at that path is replaced, any other existing file is an error, and
// the new socket is owned by uid:gid (-1 keeps the caller's id, as in chown(2)) with
// mode 0600, so only that user (the child's) and root can connect and send; the
// directory holding it must be searchable by that user. Close removes the file.
//
// The socket has SO_PASSCRED set, so each Message carries the sender's pid: the
// permissions keep other users out, the pid tells the child from the other processes
// of its own user (the caller decides what to accept).
func Listen(path string, uid, gid int) (*Listener, error) {
	if path == "" || path == "@" {
		return nil, errors.New("listen notify socket: empty path (want a socket file path or an abstract \"@name\")")
	}
	// sun_path is 108 bytes including the terminating NUL for file paths.
	if len(path) > 107 {
		return nil, fmt.Errorf("listen notify socket %q: path is %d bytes, longer than the 107 a unix socket allows", path, len(path))
	}
	abstract := strings.HasPrefix(path, "@")
	if !abstract {
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listen notify socket %q: %w", path, err)
	}
	l := &Listener{conn: conn, name: path}
	if !abstract {
		// Listen leaves removal to us: UnixConn only unlinks for stream listeners.
		// bind(2) made it with the umask's permissions; anything sent before
		// the chmod still meets the caller's check of the sender's pid.
		if err := os.Chmod(path, 0o600); err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("listen notify socket %q: make it private: %w", path, err)
		}
		if uid != -1 || gid != -1 {
			if err := os.Lchown(path, uid, gid); err != nil {
				_ = l.Close()
				return nil, fmt.Errorf("listen notify socket %q: give it to the child's user %d:%d: %w", path, uid, gid, err)
			}
		}
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("listen notify socket %q: %w", path, err)
	}
	var soErr error
	if err := raw.Control(func(fd uintptr) {
		soErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil || soErr != nil {
		_ = l.Close()
		return nil, fmt.Errorf("listen notify socket %q: set SO_PASSCRED: %w", path, errors.Join(err, soErr))
	}
	return l, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen notify socket %q: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("listen notify socket %q: a %s already exists there (want a free path or a stale socket)", path, fi.Mode().Type())
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listen notify socket %q: remove stale socket: %w", path, err)
	}
	return nil
}

// Path returns the value for the child's NOTIFY_SOCKET environment variable.
func (l *Listener) Path() string { return l.name }

// Run reads datagrams until ctx is done or the listener is closed, parses each and
// calls handle with it, from Run's goroutine, one message at a time (handle must
// not block for long). A datagram that does not parse is still delivered with the
// lines that did parse; a truncated one (over 16 KiB) is dropped. Run closes the
// listener (removing its socket file) before it returns. It returns nil when ctx
// ended or Close was called, otherwise the read error.
func (l *Listener) Run(ctx context.Context, handle func(Message)) error {
	defer l.Close()
	// Wake the blocked read when ctx ends; the returned stop is called before Run
	// returns, and the callback owns no state beyond the connection.
	stop := context.AfterFunc(ctx, func() { _ = l.conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, maxDatagram)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, flags, _, err := l.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read notify socket %q: %w", l.name, err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			continue
		}
		msg, _ := Parse(buf[:n])
		msg.PID = senderPID(oob[:oobn])
		handle(msg)
	}
}

func senderPID(oob []byte) int {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, c := range cmsgs {
		if cred, err := unix.ParseUnixCredentials(&c); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}

// Close closes the socket and removes its socket file (not for abstract names).
// It is idempotent and returns the first close's error.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		err := l.conn.Close()
		if !strings.HasPrefix(l.name, "@") {
			if rmErr := os.Remove(l.name); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("remove notify socket %q: %w", l.name, rmErr))
			}
		}
		l.closeErr = err
	})
	return l.closeErr
}
