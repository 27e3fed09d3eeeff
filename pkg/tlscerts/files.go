package tlscerts

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic writes data to path through a temp file in the same
// directory (fsync, chmod, chown when uid >= 0, rename), so a reader such as
// a reloading Prosody never sees half a key.
func writeFileAtomic(path string, data []byte, mode os.FileMode, uid, gid int) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if uid >= 0 {
		if err = f.Chown(uid, gid); err != nil {
			return fmt.Errorf("chown %s to %d:%d: %w", f.Name(), uid, gid, err)
		}
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", f.Name(), path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // best effort: the rename is durable on the next sync anyway
		d.Close()
	}
	return nil
}

// privateDir creates dir (and parents) if needed and gives it mode 0750 and,
// when uid >= 0, the owner uid:gid, so only Prosody's user and group enter it.
func privateDir(dir string, uid, gid int) error {
	// Parents we create must stay searchable, or Prosody's user cannot
	// reach dir at all.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", filepath.Dir(dir), err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		return fmt.Errorf("chmod directory %s: %w", dir, err)
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return fmt.Errorf("chown directory %s to %d:%d: %w", dir, uid, gid, err)
		}
	}
	return nil
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
	keyData, err := os.ReadFile(keyPath)
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
	data, err := os.ReadFile(path)
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

// fixOwnerMode sets path's mode and, when uid >= 0, its owner.
func fixOwnerMode(path string, mode uint32, uid, gid int) error {
	if err := os.Chmod(path, os.FileMode(mode)); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if uid >= 0 {
		if err := os.Chown(path, uid, gid); err != nil {
			return fmt.Errorf("chown %s to %d:%d: %w", path, uid, gid, err)
		}
	}
	return nil
}
