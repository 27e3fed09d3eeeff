package tlscerts

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// writeFileAtomic writes data to path with atomicfile.Write (temp file,
// fchmod/fchown on the descriptor, rename), so a reader such as a reloading
// Prosody never sees half a key, and a link planted in a directory Prosody's
// user owns is refused, never written or chowned through.
func writeFileAtomic(path string, data []byte, mode os.FileMode, uid, gid int) error {
	if uid < 0 {
		gid = -1
	}
	_, err := atomicfile.Write(path, data, mode, uid, gid)
	return err
}

// privateDir creates dir (and parents) if needed and gives it mode 0750 and,
// when uid >= 0, the owner uid:gid, so only Prosody's user and group enter it.
func privateDir(dir string, uid, gid int) error {
	if uid < 0 {
		uid, gid = -1, -1
	}
	// Missing parents are created 0755: they must stay searchable, or
	// Prosody's user cannot reach dir at all.
	return atomicfile.MkdirOwned(dir, 0o750, uid, gid)
}

// stage copies a certificate and key that Prosody's user cannot read into
// <runtimeDir>/certs/<host>.crt (0644) and <host>.key (0600), owned by
// uid:gid, and returns the new paths. Reading needs root (or equivalent).
func stage(runtimeDir, host, certPath, keyPath string, uid, gid int) (string, string, error) {
	if runtimeDir == "" {
		return "", "", fmt.Errorf("stage %s: no runtime directory set to copy it into", keyPath)
	}
	dir := filepath.Join(runtimeDir, "certs")
	if err := privateDir(dir, uid, gid); err != nil {
		return "", "", fmt.Errorf("stage certificate for %s: %w", host, err)
	}
	certData, err := certificatesOnly(certPath)
	if err != nil {
		return "", "", fmt.Errorf("stage certificate for %s: %w", host, err)
	}
	keyData, err := atomicfile.ReadFile(keyPath, atomicfile.ReadOptions{MaxBytes: maxPEMBytes})
	if err != nil {
		return "", "", fmt.Errorf("stage key for %s: read %s: %w", host, keyPath, err)
	}
	crt, key := filepath.Join(dir, host+".crt"), filepath.Join(dir, host+".key")
	if err := writeFileAtomic(key, keyData, 0o600, uid, gid); err != nil {
		return "", "", fmt.Errorf("stage key for %s: %w", host, err)
	}
	if err := writeFileAtomic(crt, certData, 0o644, uid, gid); err != nil {
		return "", "", fmt.Errorf("stage certificate for %s: %w", host, err)
	}
	return crt, key, nil
}

// certificatesOnly returns the CERTIFICATE blocks of a PEM file, so that a
// combined <host>.pem never leaks its key into a world-readable copy.
func certificatesOnly(path string) ([]byte, error) {
	data, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{MaxBytes: maxPEMBytes})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes})...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read %s: no PEM certificate", path)
	}
	return out, nil
}

// fixOwnerMode sets path's mode and, when uid >= 0, its owner, on the
// file's descriptor (atomicfile.SetOwnerMode): a link or a hard link that
// Prosody's user planted in its data directory is refused, not chowned.
func fixOwnerMode(path string, mode uint32, uid, gid int) error {
	if uid < 0 {
		uid, gid = -1, -1
	}
	return atomicfile.SetOwnerMode(path, os.FileMode(mode), uid, gid)
}
