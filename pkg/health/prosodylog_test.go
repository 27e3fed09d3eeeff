package health

import (
	"strings"
	"testing"
)

// Prosody's log passes through unchanged, and only its error lines are kept,
// even when a line arrives in pieces; ErrorsAbout finds them by module name.
func TestProsodyLogKeepsErrorLinesAboutAModule(t *testing.T) {
	var out strings.Builder
	l := NewProsodyLog(&out)
	log := "startup             info\tHello and welcome to Prosody version 13.0.1\n" +
		"modulemanager       error\tUnable to load module 'pfe_broken': mod_pfe_broken.lua:1: module 'pfe_missing_lua_lib' not found:\n" +
		"\tno field package.preload['pfe_missing_lua_lib']\n" +
		"localhost:mam       error\tError initializing module 'mam' on 'localhost': bad option\n"
	for _, piece := range []string{log[:30], log[30:120], log[120:]} {
		if _, err := l.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != log {
		t.Errorf("the log was changed on its way through:\n%q", out.String())
	}
	got := l.ErrorsAbout("pfe_broken")
	if len(got) != 1 || !strings.Contains(got[0], "pfe_missing_lua_lib") {
		t.Errorf("ErrorsAbout(pfe_broken) = %q, want Prosody's one line about it", got)
	}
	if got := l.ErrorsAbout("mam"); len(got) != 1 || !strings.HasPrefix(got[0], "localhost:mam") {
		t.Errorf("ErrorsAbout(mam) = %q", got)
	}
	if got := l.ErrorsAbout("startup"); len(got) != 0 {
		t.Errorf("an info line was kept: %q", got)
	}
	for range logTailLines + 5 {
		_, _ = l.Write([]byte("x error\tother\n"))
	}
	if n := len(l.errors); n != logTailLines {
		t.Errorf("kept %d error lines, want the last %d", n, logTailLines)
	}
}

// A module check that is due holds readiness back; one that found a module
// missing makes the state degraded, naming it.
func TestDeriveWaitsForTheModuleCheck(t *testing.T) {
	base := inputs{stagesDone: true, childPID: 7, childRunning: true, probeOK: true, notify: notifyState{pid: 7, ready: true}}
	pending, missing := base, base
	pending.modulesPending = true
	missing.modulesMissing = "pfe_broken on localhost"
	if r := derive(pending, false, true); r.State != StateStarting || !strings.Contains(r.Reason, "loaded modules") {
		t.Errorf("pending check: %v %q, want starting while the modules are checked", r.State, r.Reason)
	}
	if r := derive(missing, false, true); r.State != StateDegraded || !strings.Contains(r.Reason, "pfe_broken on localhost") {
		t.Errorf("missing module: %v %q, want degraded naming it", r.State, r.Reason)
	}
	if r := derive(base, false, true); r.State != StateReady {
		t.Errorf("all loaded: %v %q, want ready", r.State, r.Reason)
	}
}

// Every line Prosody logs passes through ProsodyLog on its way to stdout: a
// line that is not an error (nearly all of them) must cost no allocation, and
// a kept error line is cut at logLineBytes even when it arrives whole.
func TestProsodyLogCopiesOnlyErrorLines(t *testing.T) {
	l := NewProsodyLog(nil)
	info := []byte("c2s55d0c8a3e0b0      info\tClient connected\nc2s55d0c8a3e0b0      debug\tReceived[c2s]: <iq type='get'>\n")
	if n := testing.AllocsPerRun(100, func() { _, _ = l.Write(info) }); n != 0 {
		t.Errorf("a write of two info lines made %v allocations, want 0", n)
	}
	long := "modulemanager       error\tUnable to load module 'x': " + strings.Repeat("y", 3*logLineBytes) + "\n"
	_, _ = l.Write([]byte(long))
	got := l.ErrorsAbout("x")
	if len(got) != 1 {
		t.Fatalf("a long error line was kept as %d lines, want one", len(got))
	}
	if len(got[0]) > logLineBytes {
		t.Errorf("a long error line was kept whole (%d bytes), want at most %d", len(got[0]), logLineBytes)
	}
}
