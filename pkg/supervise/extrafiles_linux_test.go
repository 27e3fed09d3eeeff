package supervise

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ExtraFiles: the child gets the files as fds 3, 4, … (and no other
// descriptor above 2), in their blocking mode, with the extra environment
// replacing Env's entries; it is asked again at every start.
func TestExtraFilesInheritedAtEveryStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// File.Fd makes a descriptor blocking: set non-blocking after it, as
	// Prosody's sockets are, to see that spawn leaves the mode alone.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(int(f.Fd()), true); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	calls := 0
	// The child records fd 3, its fdinfo flags, the fds it has, and the
	// environment; the first start exits 1 so the policy restarts it once.
	script := `n=$(ls ` + dir + ` | wc -l); o=` + dir + `/start$n;
readlink /proc/$$/fd/3 > $o.tmp; grep flags /proc/$$/fdinfo/3 >> $o.tmp;
echo "$LISTEN_FDS $KEEP $SWAP" >> $o.tmp; ls /proc/$$/fd >> $o.tmp; mv $o.tmp $o; [ $n -ge 1 ]`
	p := startInProcess(t, Config{
		Path: "/bin/sh", Args: []string{"-c", script},
		Env:     []string{"PATH=/usr/bin:/bin", "KEEP=kept", "SWAP=old"},
		Restart: Policy{Mode: ModeOnFailure, Backoff: 10 * time.Millisecond, Max: 3, Window: time.Minute},
		ExtraFiles: func() ([]*os.File, []string) {
			calls++
			return []*os.File{f}, []string{"LISTEN_FDS=1", "SWAP=new"}
		},
	})
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("Run = %d; stderr %q", code, p.stderr.String())
	}
	if calls != 2 {
		t.Errorf("ExtraFiles called %d times for 2 starts", calls)
	}
	for _, name := range []string{"start0", "start1"} {
		out, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) < 4 {
			t.Fatalf("%s: %q", name, out)
		}
		if want := fmt.Sprintf("socket:[%d]", st.Ino); lines[0] != want {
			t.Errorf("%s: fd 3 is %q, want the listener %q", name, lines[0], want)
		}
		var flags int
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(lines[1], "flags:")), "%o", &flags)
		if flags&unix.O_NONBLOCK == 0 {
			t.Errorf("%s: fd 3 flags %q: the non-blocking mode was changed", name, lines[1])
		}
		if lines[2] != "1 kept new" {
			t.Errorf("%s: LISTEN_FDS KEEP SWAP = %q, want %q", name, lines[2], "1 kept new")
		}
		// dash keeps the stdout it redirected for ls on fd 10 and up.
		var fds []string
		for _, fd := range lines[3:] {
			if len(fd) == 1 {
				fds = append(fds, fd)
			}
		}
		if fds := strings.Join(fds, " "); fds != "0 1 2 3" {
			t.Errorf("%s: the child has fds %q, want 0 1 2 3", name, fds)
		}
	}
}
