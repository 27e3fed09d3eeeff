package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts a real HTTP server on a free loopback port that answers 200
// until failAfter requests, then 503; it is closed at the end of the test.
func serve(t *testing.T, failAfter int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := n.Add(1); failAfter > 0 && c > int64(failAfter) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, "ready")
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return "http://" + l.Addr().String() + "/readyz"
}

// The Go load client counts every 200 and every failure; a run that saw
// failures must say so, or the benchmark would report a rate of errors.
func TestLoadClientCountsAnswers(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runLoad([]string{"-url", serve(t, 0), "-c", "2", "-d", "200ms"}, &out, &errb); code != 0 {
		t.Fatalf("load exited %d: %s", code, errb.String())
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Requests < 10 || res.Errors != 0 || res.P50 <= 0 || res.P99 < res.P50 {
		t.Fatalf("implausible result against a healthy server: %+v", res)
	}

	out.Reset()
	if code := runLoad([]string{"-url", serve(t, 5), "-c", "1", "-d", "100ms"}, &out, &errb); code != 0 {
		t.Fatalf("load exited %d: %s", code, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Requests != 5 || res.Errors == 0 {
		t.Fatalf("after 5 answers the server says 503: want 5 requests and errors, got %+v", res)
	}
}

// parseWrk reads real wrk output (Debian package wrk), not a copy of it.
func TestParseWrkOnRealOutput(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatal("wrk not found: install Debian package wrk (scripts/install-deps test)")
	}
	out, err := exec.Command(wrk, "-t1", "-c2", "-d1s", "--latency", serve(t, 0)).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v: %s", err, out)
	}
	res, err := parseWrk(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 10 || res.Errors != 0 || res.P50 <= 0 || res.P99 < res.P50 || res.Elapsed < 900*time.Millisecond {
		t.Fatalf("implausible parse: %+v of\n%s", res, out)
	}
	out, err = exec.Command(wrk, "-t1", "-c1", "-d1s", "--latency", serve(t, 3)).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v: %s", err, out)
	}
	if res, err = parseWrk(string(out)); err != nil || res.Errors == 0 {
		t.Fatalf("503s must count as errors: %+v, %v\n%s", res, err, out)
	}
}
