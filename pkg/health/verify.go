package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// VerifySummary is what /status shows of the last `entrypoint verify` (or
// PROSODY_VERIFY_ON_START run). It holds no secret.
type VerifySummary struct {
	At              time.Time `json:"at"`
	DurationSeconds float64   `json:"duration_seconds"`
	OK              bool      `json:"ok"`
	// Domains are the domains checked, each with its own throwaway account.
	Domains      []string `json:"domains,omitempty"`
	Passed       int      `json:"passed"`
	Failed       int      `json:"failed"`
	NotCheckable int      `json:"not_checkable"`
	// FailedFeatures names the features that failed ("login" for the
	// session): the names alone when one domain was checked, else each as
	// "<feature> on <domain>".
	FailedFeatures []string `json:"failed_features,omitempty"`
	// Error is why the run could not check anything (no admin shell, …).
	Error string `json:"error,omitempty"`
}

// VerifyFile is the name, in the runtime directory, of the last verify
// summary: the verify verb runs in its own process (docker exec) and leaves
// it there for the running entrypoint's /status.
const VerifyFile = "verify-last.json"

// WriteVerifySummary writes s to path atomically (0644, the caller's owner).
func WriteVerifySummary(path string, s VerifySummary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the verify summary: %w", err)
	}
	if _, err := atomicfile.Write(path, append(b, '\n'), 0o644, -1, -1); err != nil {
		return fmt.Errorf("write the verify summary: %w", err)
	}
	return nil
}

// verifyCache is the summary last read from Config.VerifyFile, kept until
// the file's size or modification time changes. Guarded by Monitor.vmu.
type verifyCache struct {
	mod     time.Time
	size    int64
	summary *VerifySummary
}

// verifySummary returns the summary in Config.VerifyFile, nil when there is
// none (or no file is configured). It re-reads the file only when it changed.
func (m *Monitor) verifySummary() *VerifySummary {
	if m.cfg.VerifyFile == "" {
		return nil
	}
	m.vmu.Lock()
	defer m.vmu.Unlock()
	fi, err := os.Stat(m.cfg.VerifyFile)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.log.Debug("stat the verify summary", zap.Error(err))
		}
		m.verify = verifyCache{}
		return nil
	}
	if m.verify.summary != nil && fi.ModTime().Equal(m.verify.mod) && fi.Size() == m.verify.size {
		s := *m.verify.summary
		return &s
	}
	b, err := atomicfile.ReadFile(m.cfg.VerifyFile, atomicfile.ReadOptions{MaxBytes: 64 << 10})
	if err != nil {
		m.log.Debug("read the verify summary", zap.Error(err))
		return nil
	}
	var s VerifySummary
	if err := json.Unmarshal(b, &s); err != nil {
		m.log.Debug("decode the verify summary", zap.String("path", m.cfg.VerifyFile), zap.Error(err))
		return nil
	}
	m.verify = verifyCache{mod: fi.ModTime(), size: fi.Size(), summary: &s}
	out := s
	return &out
}
