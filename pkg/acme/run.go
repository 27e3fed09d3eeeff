package acme

import (
	"context"
	"time"

	"github.com/go-acme/lego/v5/certificate"
	"go.uber.org/zap"
)

// recheck is how often Run wakes to ask the CA's renewal information (ARI)
// whether the certificate should be renewed earlier than planned.
const recheck = 6 * time.Hour

// Run renews the stored certificate while ctx lasts: it sleeps until the
// certificate is due (RenewAt, or earlier when the CA's renewal information
// says so), orders a new one, and calls renewed once the new pair is
// stored (the caller reloads Prosody onto it). A failed order keeps the
// stored certificate, is reported to obs, and is retried after
// RetryBackoff, doubled after each failure up to MaxRetryBackoff. A failure
// of the start's Ensure (development falls back to self-signed) is reported
// and retried the same way. Run returns nil when ctx ends; it has no other
// way to end. obs may be nil; renewed must not block long.
func (m *Manager) Run(ctx context.Context, obs Observer, renewed func()) error {
	if obs == nil {
		obs = nopObserver{}
	}
	backoff := m.cfg.RetryBackoff
	var retryAt time.Time
	if m.last != nil {
		obs.ACMERenewal("failure", m.last)
		retryAt = m.cfg.Now().Add(backoff)
		backoff = min(2*backoff, MaxRetryBackoff)
	}
	var ari *certificate.RenewalInfo
	hosts := m.hosts
	for {
		now := m.cfg.Now()
		due, p := now, (*Pair)(nil)
		if sp, err := Stored(m.cfg.DataDir); err == nil && m.renewReason(sp, hosts, ari) == "" {
			p, due = sp, m.renewAt(sp, ari)
		}
		if retryAt.After(due) {
			due = retryAt
		}
		obs.ACMENextRenewal(due)
		wake := min(due.Sub(now), recheck)
		if !sleep(ctx, wake) {
			return nil
		}
		if p != nil && m.cfg.Now().Before(due) {
			// Woken to look at the CA's renewal information only.
			ari = m.renewalInfo(ctx, p)
			continue
		}
		err := m.obtain(ctx, hosts)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			obs.ACMERenewal("failure", err)
			retryAt = m.cfg.Now().Add(backoff)
			m.log.Error("acme renewal failed; the current certificate stays in use", zap.Error(err),
				zap.Time("retry_at", retryAt))
			backoff = min(2*backoff, MaxRetryBackoff)
			continue
		}
		obs.ACMERenewal("success", nil)
		retryAt, backoff, ari = time.Time{}, m.cfg.RetryBackoff, nil
		renewed()
	}
}

// renewalInfo asks the CA when it wants p renewed; nil when it does not say
// (no ARI endpoint, or an error, which only delays the next look).
func (m *Manager) renewalInfo(ctx context.Context, p *Pair) *certificate.RenewalInfo {
	client, err := m.client(ctx)
	if err != nil {
		m.log.Debug("acme renewal information not fetched", zap.Error(err))
		return nil
	}
	info, err := client.Certificate.GetRenewalInfo(ctx, p.Leaf)
	if err != nil {
		m.log.Debug("acme renewal information not fetched", zap.Error(err))
		return nil
	}
	return info
}

// sleep waits d (none when d <= 0); false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type nopObserver struct{}

func (nopObserver) ACMERenewal(string, error) {}
func (nopObserver) ACMENextRenewal(time.Time) {}
