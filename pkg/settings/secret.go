package settings

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// redacted replaces a secret wherever a value would be shown.
const redacted = "<redacted>"

// Secret holds a secret value that never prints: String, GoString, Format and MarshalJSON
// show "<redacted>" (or "" when empty). Reveal returns the value. The zero Secret is empty.
type Secret struct {
	v string
}

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the secret value. Call it only where the value is used, never to log it.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.v != "" }

// String returns "<redacted>", or "" for an empty secret.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// GoString redacts like String, so %#v does not reveal the value.
func (s Secret) GoString() string { return "settings.Secret(" + s.String() + ")" }

// Format redacts for every verb (%v, %+v, %s, %q, %x ...).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", s.String())), nil
}

// MarshalText writes the redacted form (used by encoders such as zap's reflection encoder).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Decode lets envconfig.Process fill a Secret; it never fails.
func (s *Secret) Decode(v string) error {
	s.v = v
	return nil
}

// errEmptySecret is matched when a secret file is empty.
var errEmptySecret = errors.New("empty secret")

// maxSecretBytes caps a secret file: a password or key is far shorter.
const maxSecretBytes = 64 << 10

// readSecretFile reads a secret from path and trims one trailing newline (\n or \r\n), as
// written by editors and `echo`. The file is opened with atomicfile (no symbolic link in a
// directory another user can change, no FIFO or device: refused at once, never blocking).
// An empty secret, or one of several lines, is an error. Errors name the path, never the content.
func readSecretFile(path string) (string, error) {
	b, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{MaxBytes: maxSecretBytes})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot read %s: %w", strconv.Quote(path), err)
	}
	v := string(b)
	if s, ok := strings.CutSuffix(v, "\r\n"); ok {
		v = s
	} else {
		v = strings.TrimSuffix(v, "\n")
	}
	if v == "" {
		return "", fmt.Errorf("%s is empty; want the secret on one line: %w", strconv.Quote(path), errEmptySecret)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("%s holds %d lines; want the secret on one line (one trailing newline is fine)", strconv.Quote(path), strings.Count(v, "\n")+1)
	}
	return v, nil
}

// secretsDir is the directory under a data dir that holds generated secrets.
const secretsDir = "secrets"

// EnsureGenerated returns the internal secrets named by names (for example "component_secret"),
// generating each one the first time: 32 bytes from crypto/rand, base64url without padding,
// kept in <dataDir>/secrets/<name> with mode 0600 (directory 0700), so restarts reuse them.
// An existing file is read as is (one trailing newline trimmed); an empty one is an error that
// names it. Concurrent callers agree on one value (the file is created by hard link, which fails
// if another caller got there first). Names must match [a-z0-9_]+. The map has one entry per name.
// A full volume is an *atomicfile.NoSpaceError (errors.Is(err, atomicfile.ErrNoSpace)), and
// leaves no temporary file and no partial secret behind.
func EnsureGenerated(dataDir string, names ...string) (map[string]string, error) {
	for _, n := range names {
		if !isSecretName(n) {
			return nil, fmt.Errorf("generate secret %q: invalid name; accepted: [a-z0-9_]+", n)
		}
	}
	dir := filepath.Join(dataDir, secretsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, atomicfile.NoSpace(dataDir, fmt.Errorf("create secrets directory %s: %w", dir, err))
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, err := ensureOne(dir, n)
		if err != nil {
			return nil, atomicfile.NoSpace(dir, err)
		}
		out[n] = v
	}
	return out, nil
}

func isSecretName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func ensureOne(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	v, err := readSecretFile(path)
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, errEmptySecret):
		return "", fmt.Errorf("generated secret %s is empty; delete it to generate a new one", path)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read generated secret: %w", err)
	}

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate secret %s: %w", name, err)
	}
	v = base64.RawURLEncoding.EncodeToString(raw)

	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("generate secret %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // the link below keeps the content; the temp name goes
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("generate secret %s: %w", path, err)
	}
	if _, err := tmp.WriteString(v); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write generated secret %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("sync generated secret %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close generated secret %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process generated it first: use theirs.
			return ensureExisting(path)
		}
		return "", fmt.Errorf("store generated secret %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: make the new name durable
		d.Close()
	}
	return v, nil
}

func ensureExisting(path string) (string, error) {
	v, err := readSecretFile(path)
	if errors.Is(err, errEmptySecret) {
		return "", fmt.Errorf("generated secret %s is empty; delete it to generate a new one", path)
	}
	if err != nil {
		return "", fmt.Errorf("read generated secret: %w", err)
	}
	return v, nil
}
