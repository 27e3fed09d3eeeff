package acme_test

import (
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/acme"
)

// TestRenewAt: a third of the lifetime left by default, renew-before exactly
// when set, jitter only ever earlier and by at most a twentieth (12h at most).
func TestRenewAt(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		life        time.Duration
		renewBefore time.Duration
		jitter      float64
		want        time.Time
	}{
		{"90 days, a third left", 90 * 24 * time.Hour, 0, 0, nb.Add(60 * 24 * time.Hour)},
		{"6 days (short-lived)", 6 * 24 * time.Hour, 0, 0, nb.Add(4 * 24 * time.Hour)},
		{"renew-before is exact", 90 * 24 * time.Hour, 30 * 24 * time.Hour, 0.9, nb.Add(60 * 24 * time.Hour)},
		{"full jitter capped at 12h", 90 * 24 * time.Hour, 0, 1, nb.Add(60*24*time.Hour - 12*time.Hour)},
		{"jitter a twentieth of a short life", 20 * time.Hour, 0, 1, nb.Add(20*time.Hour*2/3 - time.Hour)},
	} {
		got := acme.RenewAt(nb, nb.Add(tc.life), tc.renewBefore, tc.jitter)
		if d := got.Sub(tc.want); d < -time.Second || d > time.Second {
			t.Errorf("%s: RenewAt = %v, want %v", tc.name, got, tc.want)
		}
	}
}
