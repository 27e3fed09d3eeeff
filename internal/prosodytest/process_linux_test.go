package prosodytest_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
)

// TestStartRunsProsodyAsProsodyUser starts real Prosody with MinimalConfig and
// checks what the package tests rely on: it runs as the prosody user in its own
// process group, serves c2s on the given port, logs to Output, and exits 0 on SIGTERM.
func TestStartRunsProsodyAsProsodyUser(t *testing.T) {
	dir := prosodytest.Dir(t, "data", "certs")
	uid, gid := prosodytest.IDs(t)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != 0o755 {
		t.Fatalf("Dir: owner %d:%d mode %v, want %d:%d 0755", st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
	}
	port := prosodytest.FreePort(t)
	p := prosodytest.Start(t, prosodytest.Options{Dir: dir, Config: prosodytest.MinimalConfig(filepath.Join(dir, "data"), port)})

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	wait.Until(t, 15*time.Second, "prosody listening on "+addr, func() error {
		if err := p.Running(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	})

	status, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if want := "Uid:\t" + strconv.Itoa(uid) + "\t"; !strings.Contains(string(status), want) {
		t.Errorf("prosody does not run as uid %d:\n%s", uid, status)
	}
	if pgid, err := syscall.Getpgid(p.PID()); err != nil || pgid != p.PID() {
		t.Errorf("prosody process group = %d, %v; want its own (%d)", pgid, err, p.PID())
	}

	p.Signal(t, syscall.SIGTERM)
	if code := p.WaitExit(t); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0\n%s", code, p.Output())
	}
	if !strings.Contains(p.Output(), "Shutdown complete") {
		t.Errorf("Output lacks Prosody's \"Shutdown complete\" log line:\n%s", p.Output())
	}
}

func TestBufferConcurrentWrites(t *testing.T) {
	var b prosodytest.Buffer
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	for range 4 {
		<-done
	}
	if got := len(b.String()); got != 400 {
		t.Fatalf("len = %d, want 400", got)
	}
}
