package health

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

const testToken = "status-token-for-the-tests-0123"

func TestStatusAccess(t *testing.T) {
	for _, tc := range []struct {
		remote, auth, token string
		want                int
	}{
		{"127.0.0.1:40000", "", "", 200},
		{"127.0.0.53:40000", "", testToken, 200}, // all of 127/8 is loopback
		{"[::1]:40000", "", "", 200},
		{"[::ffff:127.0.0.1]:40000", "", "", 200},
		{"10.1.2.3:40000", "", "", 403}, // no token configured: nothing helps
		{"10.1.2.3:40000", "Bearer " + testToken, "", 403},
		{"10.1.2.3:40000", "", testToken, 401},
		{"10.1.2.3:40000", "Bearer wrong-token-wrong-token", testToken, 401},
		{"10.1.2.3:40000", "Bearer " + testToken + "x", testToken, 401},
		{"10.1.2.3:40000", "Basic " + testToken, testToken, 401},
		{"10.1.2.3:40000", testToken, testToken, 401},
		{"10.1.2.3:40000", "Bearer " + testToken, testToken, 200},
		{"[2001:db8::5]:40000", "bearer  " + testToken + " ", testToken, 200},
		{"@", "", "", 403}, // no IP (a unix socket): not loopback
		{"", "", testToken, 401},
	} {
		if got := statusAccess(tc.remote, tc.auth, tc.token); got != tc.want {
			t.Errorf("statusAccess(%q, %q, token %v) = %d, want %d", tc.remote, tc.auth, tc.token != "", got, tc.want)
		}
	}
}

// The real handler, asked by a client that is not on loopback. The test binds
// only to loopback, so the peer address is set on the request (192.0.2.0/24 is
// TEST-NET-1: no packet is sent anywhere).
func TestStatusRefusedToNetworkPeers(t *testing.T) {
	ask := func(m *Monitor, path, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "192.0.2.10:40000"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, req)
		return rec
	}
	open, err := New(Config{Mode: ModePlain})
	if err != nil {
		t.Fatal(err)
	}
	open.SetInfo(Info{Hosts: []string{"secret-host.example"}})
	rec := ask(open, StatusPath, "Bearer "+testToken)
	if rec.Code != 403 || strings.Contains(rec.Body.String(), "secret-host") || !strings.Contains(rec.Body.String(), "PROSODY_STATUS_TOKEN") {
		t.Errorf("/status without a configured token = %d %q, want 403 naming PROSODY_STATUS_TOKEN and no detail", rec.Code, rec.Body)
	}
	for _, path := range []string{LivePath, ReadyPath, MetricsPath} {
		if rec := ask(open, path, ""); rec.Code == 401 || rec.Code == 403 {
			t.Errorf("%s from a network peer = %d, want it open", path, rec.Code)
		}
	}

	m, err := New(Config{Mode: ModePlain, StatusToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	m.SetInfo(Info{Hosts: []string{"secret-host.example"}})
	for _, auth := range []string{"", "Bearer not-the-token-not-the-token"} {
		rec := ask(m, StatusPath, auth)
		if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" || strings.Contains(rec.Body.String(), "secret-host") {
			t.Errorf("/status with %q = %d %q (WWW-Authenticate %q), want 401 without detail", auth, rec.Code, rec.Body, rec.Header().Get("WWW-Authenticate"))
		}
	}
	rec = ask(m, StatusPath, "Bearer "+testToken)
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); rec.Code != 200 || err != nil || len(st.Hosts) != 1 {
		t.Errorf("/status with the token = %d %v %q, want the document", rec.Code, err, rec.Body)
	}
	if strings.Contains(rec.Body.String(), testToken) {
		t.Error("/status shows the token")
	}
}

// Over a real connection (loopback, so allowed anyway) the token is accepted
// and never echoed, and loopback needs none.
func TestStatusTokenOverHTTP(t *testing.T) {
	m := startMonitor(t, Config{Mode: ModePlain, StatusToken: testToken})
	m.SetStagesDone()
	m.ChildStarted(os.Getpid())
	c := &http.Client{Timeout: 5 * time.Second}
	for _, auth := range []string{"Bearer " + testToken, ""} {
		req, err := http.NewRequest(http.MethodGet, "http://"+m.Addr()+StatusPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var st Status
		if resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil || st.State != "ready" {
			t.Errorf("/status over loopback with %q = %d %s, want 200 ready", auth, resp.StatusCode, body)
		}
		if strings.Contains(string(body), testToken) {
			t.Error("/status shows the token")
		}
	}
	if _, body, _ := get(t, m, MetricsPath); strings.Contains(body, testToken) {
		t.Error("/metrics shows the token")
	}
}

// A rotated token (SetStatusToken, called by the reloader when the token file
// changes) replaces the old one at once: the old one no longer opens /status.
func TestStatusTokenRotation(t *testing.T) {
	m, err := New(Config{Mode: ModePlain, StatusToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(auth string) int {
		req := httptest.NewRequest(http.MethodGet, StatusPath, nil) // from 192.0.2.1, not loopback
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	const next = "the-next-status-token-456789"
	if got := ask("Bearer " + testToken); got != 200 {
		t.Fatalf("first token = %d, want 200", got)
	}
	m.SetStatusToken(next)
	if old, cur := ask("Bearer "+testToken), ask("Bearer "+next); old != 401 || cur != 200 {
		t.Errorf("after rotation: old token %d, new token %d; want 401 and 200", old, cur)
	}
	m.SetStatusToken("")
	if got := ask("Bearer " + next); got != 403 {
		t.Errorf("token removed: %d, want 403", got)
	}
}
