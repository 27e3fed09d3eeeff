package pfe

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// ErrExists is wrapped by CreateProfile's error when the profile (or its
// file) is already there: nothing was written.
var ErrExists = errors.New("already exists")

// ErrBadName is wrapped by CreateProfile's error when NAME breaks the rule
// for profile names.
var ErrBadName = errors.New("not a valid profile name")

// ErrNoCustomDir is returned by CreateProfile when there is no custom
// directory to create the profile in.
var ErrNoCustomDir = errors.New("no custom config directory is set (PROSODY_CUSTOM_DIR): profiles are created there")

// CreateProfile writes a new profile NAME into customDir/profiles/NAME/profile.json:
// a copy of profile from (which may be NAME itself, to shadow a built-in one),
// or the tree's template when from is "". It returns the path written. The
// file is written atomically, and removed again when the tree no longer loads
// with it. Errors wrap ErrExists when NAME or its file exists already and
// ErrBadName for a bad NAME; ErrNoCustomDir is returned when customDir is "".
// Any other error is bad input (--from) or the tree failing to load.
func CreateProfile(builtinDir, customDir, name, from string) (string, error) {
	if err := CheckName("profile", name); err != nil {
		return "", fmt.Errorf("%w (%w)", err, ErrBadName)
	}
	if customDir == "" {
		return "", ErrNoCustomDir
	}
	t, err := Load(builtinDir, customDir)
	if err != nil {
		return "", err
	}
	if old := t.Profile(name); old != nil && from != name {
		return "", fmt.Errorf("profile %q %w (%s); to shadow a built-in one, use --from %s", name, ErrExists, old.Source, name)
	}
	var p Profile
	if from != "" {
		src := t.Profile(from)
		if src == nil {
			return "", fmt.Errorf("--from %q: no such profile; profiles: %s", from, strings.Join(t.Profiles(), ", "))
		}
		p = *src
		p.Description = "Copy of " + from + ": " + src.Description
	} else if err := decodeStrict(filepath.Join(builtinDir, "templates", "profile.json"), &p); err != nil {
		return "", fmt.Errorf("profile template: %w", err)
	}
	p.Name = name
	data, err := json.MarshalIndent(&p, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode profile %s: %w", name, err)
	}
	path := filepath.Join(customDir, "profiles", name, "profile.json")
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("%s %w; edit it instead", path, ErrExists)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create profile directory: %w", err)
	}
	if _, err := atomicfile.Write(path, append(data, '\n'), 0o644, -1, -1); err != nil {
		return "", err
	}
	if _, err := Load(builtinDir, customDir); err != nil {
		_ = os.RemoveAll(filepath.Dir(path)) // never leave a profile that breaks the tree
		return "", err
	}
	return path, nil
}
