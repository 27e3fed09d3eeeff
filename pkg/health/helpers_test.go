package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// startMonitor creates a Monitor on 127.0.0.1:0 and runs it until the test ends.
func startMonitor(t *testing.T, cfg Config) *Monitor {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = zaptest.NewLogger(t)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return m
}

// get fetches path from m and returns the status code, body and round-trip time.
func get(t *testing.T, m *Monitor, path string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get("http://" + m.Addr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b)), time.Since(start)
}

// waitFor polls path until it answers code with a body containing substr.
func waitFor(t *testing.T, m *Monitor, path string, code int, substr string) string {
	t.Helper()
	var body string
	wait.Until(t, 15*time.Second, fmt.Sprintf("%s answering %d with %q", path, code, substr), func() error {
		var gotCode int
		gotCode, body, _ = get(t, m, path)
		if gotCode != code || !strings.Contains(body, substr) {
			return fmt.Errorf("last answer %d %q", gotCode, body)
		}
		return nil
	})
	return body
}

func expect(t *testing.T, m *Monitor, path string, code int, substr string) {
	t.Helper()
	gotCode, body, _ := get(t, m, path)
	if gotCode != code || !strings.Contains(body, substr) {
		t.Fatalf("%s = %d %q, want %d containing %q", path, gotCode, body, code, substr)
	}
}
