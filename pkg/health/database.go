package health

import (
	"context"
	"net"
	"time"
)

// databaseJSON is /status's database part (PostgreSQL storage only).
type databaseJSON struct {
	Addr      string     `json:"addr"`
	Reachable bool       `json:"reachable"`
	Detail    string     `json:"detail"`
	At        time.Time  `json:"at"`
	Since     *time.Time `json:"unreachable_since,omitempty"`
}

// probeDatabase reports whether something accepts connections at the database
// address (network "tcp" or "unix"), within timeout. It is the cheap half of a
// database check: a refused or silent port is what the probe can see without
// credentials; a wrong password shows in Prosody's own log. detail says why not.
func probeDatabase(ctx context.Context, network, addr string, timeout time.Duration) (ok bool, detail string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return false, shortNetErr(err)
	}
	_ = conn.Close()
	return true, "accepts connections"
}
