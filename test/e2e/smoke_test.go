package e2e

import (
	"strings"
	"testing"
	"time"
)

// The development server a newcomer gets from `make run`: ready, and stopped
// cleanly by SIGTERM.
func TestDevelopmentServerStartsAndStops(t *testing.T) {
	s := NewServer(t, Options{}).Start()
	s.WaitReady(20 * time.Second)
	if st := s.Status(); st.Profile != "development" || st.Environment != "development" || !st.Child.Running || st.State != "ready" {
		t.Fatalf("/status = %+v", st)
	}
	if got := s.Stop(15 * time.Second); got != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", got)
	}
}

// A bad environment exits 78 quickly, prints every problem and starts nothing.
func TestBadEnvironmentExits78(t *testing.T) {
	s := NewServer(t, Options{Env: map[string]string{
		"PROSODY_STORAGE": "mysql", "PROSODY_C2S_PORT": "99999", "PROSODY_PROFLE": "standard",
		"PROSODY_DB_PASSWORD": "hunter2-secret",
	}})
	start := time.Now()
	s.Start()
	code, ok := s.Wait(5 * time.Second)
	if !ok {
		t.Fatal("entrypoint did not exit on a bad environment")
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %s to reject the environment", elapsed)
	}
	if code != 78 {
		t.Fatalf("exit code %d, want 78", code)
	}
	errs := s.Stderr()
	for _, want := range []string{"PROSODY_STORAGE", "PROSODY_C2S_PORT", "PROSODY_PROFLE", "did you mean PROSODY_PROFILE"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "hunter2-secret") {
		t.Errorf("stderr leaks the password")
	}
	if s.Stdout() != "" {
		t.Errorf("prosody seems to have run: %s", s.Stdout())
	}
}
