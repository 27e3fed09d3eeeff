package supervise

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Command reports what a shell would: the output, the exit status, 128+N
// for a signal, 127 and 126 when the program cannot start.
func TestCommandCodes(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cmd     AuxCommand
		code    int
		out     string
		wantErr bool
	}{
		{AuxCommand{Path: "sh", Args: []string{"-c", "echo out; echo err >&2; exit 3"}}, 3, "out\nerr\n", false},
		{AuxCommand{Path: "sh", Args: []string{"-c", "kill -TERM $$"}}, 143, "", false},
		{AuxCommand{Path: "sh", Args: []string{"-c", "cat"}, Stdin: []byte("fed")}, 0, "fed", false},
		{AuxCommand{Path: "no-such-program-here"}, CodeNotFound, "", true},
		{AuxCommand{Path: os.TempDir()}, CodeNotExecutable, "", true},
	} {
		out, code, err := Command(ctx, c.cmd, nil, nil)
		if code != c.code || string(out) != c.out || (err != nil) != c.wantErr {
			t.Errorf("%s %v: code %d, out %q, err %v; want %d, %q, error %t", c.cmd.Path, c.cmd.Args, code, out, err, c.code, c.out, c.wantErr)
		}
	}
}

// Separate writers get separate streams.
func TestCommandStreams(t *testing.T) {
	var o, e bytes.Buffer
	out, code, err := Command(context.Background(), AuxCommand{Path: "sh", Args: []string{"-c", "echo out; echo err >&2"}}, &o, &e)
	if err != nil || code != 0 || out != nil || o.String() != "out\n" || e.String() != "err\n" {
		t.Fatalf("code %d err %v out %q; stdout %q stderr %q", code, err, out, o.String(), e.String())
	}
}

// When ctx ends, the whole process group goes, including a grandchild that
// keeps the output pipe open, and Command returns promptly with ctx's error.
func TestCommandContextKillsTheGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	pidFile := t.TempDir() + "/pid"
	start := time.Now()
	_, _, err := Command(ctx, AuxCommand{Path: "sh", Args: []string{"-c", "sleep 60 & echo $! > " + pidFile + "; wait"}}, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Command returned after %s", took)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	eventually(t, 5*time.Second, "the grandchild to be gone", func() bool {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(st), ") Z ")
	})
}
