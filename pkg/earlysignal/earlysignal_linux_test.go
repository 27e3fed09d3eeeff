package earlysignal

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// TestSignalsAreWhatAdoptExpects: the registration made at init covers
// exactly the signals supervise.Notify would register, SIGTERM first, so the
// supervisor that adopts it forwards and intercepts the same set.
func TestSignalsAreWhatAdoptExpects(t *testing.T) {
	got, want := Signals(), supervise.Catchable()
	if got[0] != syscall.SIGTERM {
		t.Errorf("first registration is %v, want SIGTERM", got[0])
	}
	sorted := slices.Clone(got)
	slices.SortFunc(sorted, func(a, b os.Signal) int { return int(a.(syscall.Signal)) - int(b.(syscall.Signal)) })
	if !slices.Equal(sorted, want) {
		t.Errorf("registered %v,\nsupervise.Catchable is %v", sorted, want)
	}
}

// TestTakeOnce: a second Take panics; two readers would each lose signals.
func TestTakeOnce(t *testing.T) {
	chld, other := Take()
	if chld == nil || other == nil {
		t.Fatal("Take returned nil channels")
	}
	defer func() {
		if recover() == nil {
			t.Error("second Take did not panic")
		}
	}()
	Take()
}

// TestImportedFromMainOnly: only cmd/entrypoint imports the package; in a
// library or a test binary it would take SIGINT and SIGTERM away from the
// whole process.
func TestImportedFromMainOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "github.com/prosody-pfe/prosody-pfe/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/prosody-pfe/prosody-pfe/pkg/earlysignal"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == self || f[0] == "github.com/prosody-pfe/prosody-pfe/cmd/entrypoint" {
			continue
		}
		if slices.Contains(f[1:], self) {
			t.Errorf("%s imports earlysignal: only cmd/entrypoint may", f[0])
		}
	}
}

// TestEveryRegistrationDoneWhenTakeReturns: init registers most signals from
// a goroutine, and Take waits for it, so a signal sent once Take has returned
// (here the last ones registered, SIGRTMAX and SIGUSR2, and the first,
// SIGTERM) reaches the channel instead of the runtime's default action, which
// would kill this test binary.
func TestEveryRegistrationDoneWhenTakeReturns(t *testing.T) {
	<-restDone // what Take waits for; Take itself may be called once per process
	for _, sig := range []syscall.Signal{64, syscall.SIGUSR2, syscall.SIGTERM} {
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-otherCh:
			if got != sig {
				t.Errorf("sent %v, channel received %v", sig, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%v sent to self never reached the channel", sig)
		}
	}
}
