package backup

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// CreateFile writes the archive of cfg to out, or to stdout when out is
// atomicfile.Stdout ("-"). The archive appears whole at out or not at all; a
// directory, FIFO or device there is refused, never replaced. SQLite copies
// are made beside out (on the backup volume, not in a small /tmp), and out
// and its temporary file are never archived themselves.
func CreateFile(ctx context.Context, cfg Config, out string, stdout io.Writer) (*Manifest, error) {
	if out == atomicfile.Stdout {
		return Create(ctx, cfg, stdout)
	}
	p, err := atomicfile.Create(out, 0o600, -1, -1)
	if err != nil {
		return nil, err
	}
	defer p.Abort()
	cfg.TempDir = filepath.Dir(out)
	cfg.Exclude = append(cfg.Exclude, p.Name(), out)
	m, err := Create(ctx, cfg, p)
	if err != nil {
		return nil, err
	}
	return m, p.Commit()
}

// VerifyFile checks the archive at path against its manifest, as Verify.
func VerifyFile(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Verify(bufio.NewReader(f))
}
