package migrate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"

	"go.uber.org/zap"
)

// run migrates from -> cfg.To, through internal files in a temporary
// directory inside the data directory when both are SQL (removed afterwards:
// it is a copy).
func run(ctx context.Context, cfg Config, from string) error {
	tmp := filepath.Join(cfg.DataDir, ".migrate-"+from+"-"+cfg.To)
	if err := os.RemoveAll(tmp); err != nil { // a copy left by an interrupted run
		return fmt.Errorf("remove %s: %w", tmp, err)
	}
	defer os.RemoveAll(tmp)
	for _, h := range plan(from, cfg.To, cfg.DataDir, tmp) {
		if h.toDir == tmp {
			// Owned on the new directory's descriptor: prosody, who owns
			// the data directory, could swap tmp for a link between a
			// mkdir and a chown by path, and have root chown its target.
			if err := atomicfile.MkdirOwned(tmp, 0o750, cfg.UID, cfg.GID); err != nil {
				return fmt.Errorf("create %s for uid %d: %w", tmp, cfg.UID, err)
			}
		}
		if err := runOnce(ctx, cfg, h); err != nil {
			return fmt.Errorf("%s to %s: %w", h.from, h.to, err)
		}
	}
	return nil
}

// runOnce writes the migrator config and runs prosody-migrator input output
// as cfg.UID:cfg.GID.
func runOnce(ctx context.Context, cfg Config, h hop) error {
	text, err := MigratorConfig(cfg, h.from, h.fromDir, h.to, h.toDir)
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.WorkDir, "migrator.cfg.lua")
	if _, err := atomicfile.Write(path, text, 0o400, cfg.UID, cfg.GID); err != nil {
		return fmt.Errorf("write migrator config: %w", err)
	}
	defer os.Remove(path) // it may hold the database password
	prog := cfg.Migrator
	if prog == "" {
		prog = "prosody-migrator"
	}
	cmd := supervise.AuxCommand{Path: prog, Args: []string{"--config", path, "input", "output"}, Dir: cfg.DataDir, Env: cfg.Env}
	if cfg.UID >= 0 {
		cmd.Cred = &supervise.Credential{UID: uint32(cfg.UID), GID: uint32(cfg.GID)}
	}
	out, code, err := supervise.Command(ctx, cmd, nil, nil)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d", code)
	}
	cfg.Logger.Debug("prosody-migrator output", zap.String("from", h.from), zap.String("to", h.to), zap.String("output", string(out)))
	// Without --keep-going a failed store aborts with a non-zero status; an
	// error line is checked too.
	if err == nil && strings.Contains(string(out), "\terror\t") {
		err = fmt.Errorf("it logged errors")
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", prog, err, lastLines(string(out), 8))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
