package supervise

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func disposition(t *testing.T, sig uintptr) uint64 {
	t.Helper()
	var old [4]uint64
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		t.Fatalf("rt_sigaction(%d): %v", sig, e)
	}
	return old[0]
}

// Signals 32 and 33 cannot be registered with signal.Notify, so an ignored
// state inherited by the entrypoint would reach every child through exec
// (seen in CI: a child with SigIgn 0x80000000). Notify sets them back to the
// default action.
func TestNotifyResetsIgnoredReservedSignals(t *testing.T) {
	ign := [4]uint64{1} // SIG_IGN
	for _, sig := range []uintptr{32, 33} {
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&ign)), 0, 8, 0, 0); e != 0 {
			t.Fatalf("ignore signal %d: %v", sig, e)
		}
		if got := disposition(t, sig); got != 1 {
			t.Fatalf("signal %d disposition %d after ignoring it, want 1", sig, got)
		}
	}
	sigs := Notify()
	defer sigs.Stop()
	for _, sig := range []uintptr{32, 33} {
		if got := disposition(t, sig); got != 0 {
			t.Errorf("signal %d disposition %d after Notify, want SIG_DFL (0)", sig, got)
		}
	}
}
