package backup

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// A restore never runs under a live server: a c2s port that answers is
// refused before anything is read or written.
func TestRestoreRefusesWhileC2SAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	data := filepath.Join(t.TempDir(), "data")
	_, err = Restore(context.Background(), RestoreConfig{DataDir: data, C2SAddr: l.Addr().String(), UID: -1, GID: -1},
		filepath.Join(t.TempDir(), "missing.tar.gz"))
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("Restore with c2s answering = %v, want ErrRunning", err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was touched: %v", err)
	}
}
