package plaininit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// A bad Prosody variable only warns under plain init; a bad variable plain
// init obeys is a configuration error naming it, with nothing made.
func TestPrepareObeysOnlyItsOwnVariables(t *testing.T) {
	var stderr bytes.Buffer
	p, err := Prepare([]string{"PROSODY_DOMAIN=not a domain", "PROSODY_HEALTH_LISTEN=off"}, &stderr, time.Now())
	if err != nil {
		t.Fatalf("a bad PROSODY_DOMAIN stopped plain init: %v", err)
	}
	defer p.Close()
	if p.Monitor != nil || !strings.Contains(stderr.String(), "PROSODY_DOMAIN") {
		t.Errorf("monitor %v with health off; stderr %q, want a warning naming PROSODY_DOMAIN", p.Monitor, stderr.String())
	}
	cfg := p.Supervisor([]string{"true", "x"}, nil, &stderr)
	if cfg.Path != "true" || len(cfg.Args) != 1 || cfg.Observer != nil {
		t.Errorf("supervisor config %+v", cfg)
	}

	_, err = Prepare([]string{"PROSODY_STOP_TIMEOUT=soon", "PROSODY_HEALTH_LISTEN=off"}, &stderr, time.Now())
	var probs *settings.Problems
	if !initsteps.IsConfig(err) || !errors.As(err, &probs) || !strings.Contains(err.Error(), "PROSODY_STOP_TIMEOUT") {
		t.Errorf("bad PROSODY_STOP_TIMEOUT: %v, want a configuration error naming it", err)
	}
	_, err = Prepare([]string{"PROSODY_UID=root", "PROSODY_HEALTH_LISTEN=off"}, &stderr, time.Now())
	if !initsteps.IsConfig(err) || !strings.Contains(err.Error(), "PROSODY_UID") {
		t.Errorf("PROSODY_UID=root: %v, want a configuration error naming it", err)
	}
}
