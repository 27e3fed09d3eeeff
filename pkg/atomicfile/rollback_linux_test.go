package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteAll's rollback, driven step by step: a rename that fails after
// another one succeeded cannot be provoked on a real filesystem between two
// calls of one function, so this test runs the steps itself and undoes the
// first install as WriteAll would.
func TestRollbackPutsThePreviousFileBack(t *testing.T) {
	dir := t.TempDir()
	kept, fresh := filepath.Join(dir, "kept"), filepath.Join(dir, "fresh")
	if err := os.WriteFile(kept, []byte("previous"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{kept, fresh} {
		w, err := Create(path, 0o600, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		if _, err := w.Write([]byte("new")); err != nil {
			t.Fatal(err)
		}
		for _, step := range []func() error{w.seal, w.keepOld, w.install} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		if b, _ := os.ReadFile(path); string(b) != "new" {
			t.Fatalf("%s not installed: %q", path, b)
		}
		if err := w.rollback(); err != nil {
			t.Fatal(err)
		}
		w.Abort()
	}
	if b, _ := os.ReadFile(kept); string(b) != "previous" {
		t.Errorf("kept holds %q after rollback; want its previous content", b)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("fresh exists after rollback: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%s holds %v; want only kept", dir, entries)
	}
}
