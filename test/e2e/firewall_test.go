package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// floodResult is what clients/firewall_flood.py (slixmpp) saw.
type floodResult struct {
	Sent       int            `json:"sent"`
	Delivered  int            `json:"delivered"`
	Bounced    int            `json:"bounced"`
	Conditions map[string]int `json:"conditions"`
	Texts      []string       `json:"texts"`
}

// runFlood logs in as jid with the real client, sends count messages to itself as fast
// as it can, and returns what came back.
func runFlood(t *testing.T, s *Server, caFile, jid, password string, count int) floodResult {
	t.Helper()
	var r floodResult
	runClient(t, &r, "firewall_flood.py",
		"--port", strconv.Itoa(s.C2S), "--ca", caFile, "--timeout", "40", "--count", strconv.Itoa(count), jid, password)
	return r
}

// The production environment loads the shipped mod_firewall rules
// (config/firewall/production-rules.pfw): a real client that sends 120 messages
// at once gets the burst of 30 delivered and the excess bounced with
// policy-violation and the rule's text; in development (no rules) all arrive.
func TestProductionFirewallBouncesAMessageFlood(t *testing.T) {
	probePython(t)
	ca := newProfileCA(t, t.TempDir())
	password := randomPassword()
	jid := "admin@" + profileDomain
	const count = 120
	for _, environment := range []string{"production", "development"} {
		t.Run(environment, func(t *testing.T) {
			s := newProfileServer(t, ca, "minimal", environment, map[string]string{
				"PROSODY_ADMINS":         jid,
				"PROSODY_ADMIN_PASSWORD": password,
				// The admin account is created over the admin shell.
				"PROSODY_FEATURES_ADMIN_SHELL": "true",
			}).Start()
			s.WaitReady(60 * time.Second)
			s.WaitFor(30*time.Second, "admin account created", func() bool {
				return strings.Contains(s.Stderr(), "admin account created")
			})
			r := runFlood(t, s, serverCA(s, ca), jid, password, count)
			t.Logf("%s: %+v", environment, r)
			if r.Delivered+r.Bounced != count {
				t.Errorf("%d delivered + %d bounced of %d sent: every message must come back one way or the other", r.Delivered, r.Bounced, count)
			}
			if environment == "development" {
				if r.Bounced != 0 {
					t.Errorf("development has no firewall rules, yet %d messages bounced: %v %v", r.Bounced, r.Conditions, r.Texts)
				}
				return
			}
			// The bucket holds 30 and refills 5 a second: however slowly the
			// server reads the flood, most of 120 messages are over the limit.
			if r.Delivered < 30 || r.Bounced < count/3 || r.Conditions["policy-violation"] != r.Bounced {
				t.Errorf("want the burst of 30 (or more) delivered and the excess bounced with policy-violation; got %d delivered, %d bounced, conditions %v", r.Delivered, r.Bounced, r.Conditions)
			}
			if len(r.Texts) != 1 || !strings.Contains(r.Texts[0], "Too many messages too fast") {
				t.Errorf("bounce texts = %q; want the rule's text", r.Texts)
			}
			// A rule mod_firewall cannot compile is logged and the script not loaded.
			for _, line := range strings.Split(s.Stdout(), "\n") {
				if strings.Contains(line, "firewall") && strings.Contains(line, "error") {
					t.Errorf("prosody logged a firewall error: %s", line)
				}
			}
			if bad := profileLogProblems(s.Stdout()); bad != "" {
				t.Errorf("prosody logged module problems:\n%s", bad)
			}
		})
	}
}
