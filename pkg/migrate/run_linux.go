package migrate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
)

// run writes the migrator config and runs prosody-migrator input output as
// cfg.UID:cfg.GID.
func run(ctx context.Context, cfg Config, from string) error {
	text, err := MigratorConfig(cfg, from)
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.WorkDir, "migrator.cfg.lua")
	if _, err := luacfg.WriteAtomic(path, text, 0o400, cfg.UID, cfg.GID); err != nil {
		return fmt.Errorf("write migrator config: %w", err)
	}
	defer os.Remove(path) // it may hold the database password
	prog := cfg.Migrator
	if prog == "" {
		prog = "prosody-migrator"
	}
	cmd := exec.CommandContext(ctx, prog, "--config", path, "input", "output")
	cmd.Dir = cfg.DataDir
	cmd.Env = cfg.Env
	if cfg.UID >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(cfg.UID), Gid: uint32(cfg.GID), Groups: []uint32{}}}
	}
	out, err := cmd.CombinedOutput()
	cfg.Logger.Debug("prosody-migrator output", zap.String("output", string(out)))
	// prosody-migrator exits 0 even when a store failed under --keep-going; we
	// do not pass it, so an error aborts with a non-zero status, but an error
	// line is checked too.
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
