package adminsock_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/adminsock"
)

// fakePeer is a stand-in for Prosody's admin socket, used only for faults real Prosody does
// not produce on demand: a stream cut in the middle of a reply, and an oversized reply. It
// answers the stream header, reads one command, then sends reply and closes.
func fakePeer(t *testing.T, reply string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen on %s: %v", path, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = l.Close(); <-done })
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		if _, err := r.ReadString('>'); err != nil { // <?xml …?>
			return
		}
		if _, err := r.ReadString('>'); err != nil { // <stream:stream …>
			return
		}
		_, _ = c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='xmpp:prosody.im/admin' xmlns:stream='http://etherx.jabber.org/streams' id=''>"))
		if _, err := r.ReadString('<'); err != nil { // start of <repl-input>
			return
		}
		if _, err := r.ReadString('>'); err != nil {
			return
		}
		_, _ = c.Write([]byte(reply))
	}()
	return path
}

func TestExecFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply string
		want  string
	}{
		{"stream cut mid reply", "<repl-output>half a li", "read"},
		{"stream closed", "</stream:stream>", "closed the admin stream"},
		{"oversized output", "<repl-output>" + strings.Repeat("x", 2<<20) + "</repl-output>", "longer than"},
		{"stream error", "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>", "stream error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := adminsock.Dial(testCtx(t), fakePeer(t, tc.reply))
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			_, err = c.Exec(testCtx(t), "server:version()")
			if !errors.Is(err, adminsock.ErrBroken) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Exec = %v, want ErrBroken mentioning %q", err, tc.want)
			}
			if _, err := c.Exec(context.Background(), "server:version()"); !errors.Is(err, adminsock.ErrBroken) {
				t.Errorf("second Exec on a broken connection = %v, want ErrBroken", err)
			}
		})
	}
}

// testCtx bounds one test's admin socket calls.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
