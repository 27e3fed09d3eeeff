package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// EndpointURL turns a listen address (":5282", "0.0.0.0:5282", "[::]:5282",
// "127.0.0.1:5282") and an endpoint path (ReadyPath, LivePath) into the URL the
// healthcheck asks: a wildcard or empty host becomes 127.0.0.1.
func EndpointURL(listen, path string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("health listen address %q: %w (want host:port like \":5282\")", listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// URLFromEnv is where `entrypoint healthcheck` asks for path: the health
// server at PROSODY_HEALTH_LISTEN, read from env as the server reads it (no
// other variable matters). It is an error when the health server is off.
func URLFromEnv(env []string, path string) (string, error) {
	st, _, _, err := settings.LoadLenient(env, func(name string) bool { return name == "PROSODY_HEALTH_LISTEN" })
	if err != nil {
		return "", err
	}
	if !st.HealthEnabled() {
		return "", errors.New("PROSODY_HEALTH_LISTEN=off: there is no health server to ask; pass --url")
	}
	return EndpointURL(st.HealthListen, path)
}

// Healthcheck is the Docker HEALTHCHECK client: it GETs rawURL (a URL with no path
// or "/" means ReadyPath; pass a URL ending in LivePath for liveness), writes one
// line to stdout ("healthy: ready" or "unhealthy: 503: stopping", or the
// transport error) and returns 0 when the answer is 200, else 1. The whole request
// is bounded by timeout. It ignores proxy environment variables and keeps no
// connection open.
func Healthcheck(ctx context.Context, rawURL string, timeout time.Duration, stdout io.Writer) int {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fmt.Fprintf(stdout, "unhealthy: bad health URL %q (want http://host:port/readyz)\n", rawURL)
		return 1
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = ReadyPath
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fmt.Fprintf(stdout, "unhealthy: %v\n", err)
		return 1
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stdout, "unhealthy: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	reason := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stdout, "unhealthy: %d: %s\n", resp.StatusCode, reason)
		return 1
	}
	fmt.Fprintf(stdout, "healthy: %s\n", reason)
	return 0
}
