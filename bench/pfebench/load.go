package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadResult is what one load run reports.
type loadResult struct {
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	Elapsed  time.Duration `json:"elapsed"`
	P50      time.Duration `json:"p50"`
	P99      time.Duration `json:"p99"`
	Tool     string        `json:"tool"`
}

func (r loadResult) rate() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// runLoad is the `pfebench load` process: conns keep-alive HTTP/1.1
// connections, each sending GET requests back to back for the duration, with
// every latency recorded. It prints one JSON loadResult. It is a process of its
// own so that the server under test and the load never share a Go runtime.
func runLoad(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "", "http://127.0.0.1:PORT/readyz")
	conns := fs.Int("c", 32, "connections")
	dur := fs.Duration("d", 5*time.Second, "duration")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(stderr, "load: -url %q: want http://host:port/path\n", *target)
		return 2
	}
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n")
	var (
		mu      sync.Mutex
		all     Sample
		errs    int64
		wg      sync.WaitGroup
		started = time.Now()
	)
	deadline := started.Add(*dur)
	for i := 0; i < *conns; i++ {
		wg.Go(func() {
			lat, e := loadConn(u.Host, req, deadline)
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		})
	}
	wg.Wait()
	res := loadResult{Requests: int64(len(all)), Errors: errs, Elapsed: time.Since(started),
		P50: all.Median(), P99: all.Quantile(0.99), Tool: "pfebench load (Go, keep-alive)"}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 1
	}
	return 0
}

// loadConn runs one connection until deadline and returns the latency of every
// successful request and the number of failures (non-200 or broken connection).
func loadConn(host string, req []byte, deadline time.Time) (Sample, int64) {
	var lat Sample
	var errs int64
	var conn net.Conn
	var r *bufio.Reader
	for time.Now().Before(deadline) {
		if conn == nil {
			c, err := net.DialTimeout("tcp", host, time.Second)
			if err != nil {
				errs++
				continue
			}
			conn, r = c, bufio.NewReader(c)
			_ = conn.SetDeadline(deadline.Add(2 * time.Second))
		}
		t0 := time.Now()
		ok, err := roundTrip(conn, r, req)
		if err != nil {
			errs++
			conn.Close()
			conn = nil
			continue
		}
		if !ok {
			errs++
			continue
		}
		lat = append(lat, time.Since(t0))
	}
	if conn != nil {
		conn.Close()
	}
	return lat, errs
}

// roundTrip writes one request and reads one response with a Content-Length
// body; ok is false for a status other than 200.
func roundTrip(conn net.Conn, r *bufio.Reader, req []byte) (bool, error) {
	if _, err := conn.Write(req); err != nil {
		return false, err
	}
	status, err := r.ReadString('\n')
	if err != nil {
		return false, err
	}
	length := -1
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return false, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "content-length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		return false, fmt.Errorf("response without Content-Length")
	}
	if _, err := r.Discard(length); err != nil {
		return false, err
	}
	return strings.HasPrefix(status, "HTTP/1.1 200 "), nil
}

// parseWrk reads the summary of `wrk --latency`.
func parseWrk(out string) (loadResult, error) {
	res := loadResult{Tool: "wrk"}
	var haveRate, have50, have99 bool
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "50%":
			res.P50, have50 = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			res.P99, have99 = wrkDuration(f[1])
		case len(f) >= 5 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			d, ok := wrkDuration(strings.TrimSuffix(f[3], ","))
			if err == nil && ok {
				res.Requests, res.Elapsed, haveRate = n, d, true
			}
		case len(f) >= 4 && f[0] == "Non-2xx":
			n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			res.Errors += n
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			for _, x := range f[2:] {
				if n, err := strconv.ParseInt(strings.TrimSuffix(x, ","), 10, 64); err == nil {
					res.Errors += n
				}
			}
		}
	}
	if !haveRate || !have50 || !have99 {
		return res, fmt.Errorf("wrk output without requests, 50%% and 99%% lines:\n%s", out)
	}
	return res, nil
}

// wrkDuration parses wrk's units: "85.00us", "1.20ms", "5.00s", "1.00m".
func wrkDuration(s string) (time.Duration, bool) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, false
			}
			return time.Duration(f * float64(u.unit)), true
		}
	}
	return 0, false
}
