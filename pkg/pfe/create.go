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

// TemplateBase is the FROM of CreateProfile that starts from templates/profile.json.
const TemplateBase = "template"

// DefaultBase is the profile CreateProfile copies when from is "" (the design's
// create_profile: `template="${2:-standard}"`).
const DefaultBase = "standard"

// CreateProfile writes a new profile NAME into customDir/profiles/NAME/profile.json:
// a copy of profile from (which may be NAME itself, to shadow a built-in one), of
// DefaultBase when from is "", or of the tree's templates/profile.json when from is
// TemplateBase. It returns the path written. The file is written atomically, and
// removed again when the tree no longer loads with it. Errors wrap ErrExists when NAME
// or its file exists already and ErrBadName for a bad NAME; ErrNoCustomDir is returned
// when customDir is "". Any other error is bad input (FROM) or the tree failing to load.
func CreateProfile(builtinDir, customDir, name, from string) (string, error) {
	t, err := loadForCreate(builtinDir, customDir, "profile", name)
	if err != nil {
		return "", err
	}
	if old := t.Profile(name); old != nil && from != name {
		return "", fmt.Errorf("profile %q %w (%s); to shadow a built-in one, create it from itself: profiles create %s %s", name, ErrExists, old.Source, name, name)
	}
	if from == "" {
		from = DefaultBase
	}
	var p Profile
	if from == TemplateBase {
		if err := decodeStrict(filepath.Join(builtinDir, "templates", "profile.json"), &p); err != nil {
			return "", fmt.Errorf("profile template: %w", err)
		}
	} else {
		src := t.Profile(from)
		if src == nil {
			return "", fmt.Errorf("base profile %q: no such profile%s; profiles: %s, or %s for the empty template", from, didYouMean(from, t.Profiles()), strings.Join(t.Profiles(), ", "), TemplateBase)
		}
		p = *src
		p.Description = "Custom profile " + name + ", based on " + from + ": " + src.Description
	}
	p.Name = name
	return writeCustom(builtinDir, customDir, filepath.Join("profiles", name, "profile.json"), &p)
}

// CreateFeature writes a new feature NAME ("group/name") into
// customDir/features/<group>/<name>.json from the tree's templates/feature.json, or,
// when component is a Prosody component module ("muc", "pubsub", ...), from
// templates/component.json with a Component of that type at <name>.<domain>. It
// returns the path written. Errors are as for CreateProfile.
func CreateFeature(builtinDir, customDir, name, component string) (string, error) {
	if err := CheckName("feature", name); err != nil {
		return "", fmt.Errorf("%w (%w)", err, ErrBadName)
	}
	group, base, _ := strings.Cut(name, "/")
	t, err := loadForCreate(builtinDir, customDir, "feature", group)
	if err != nil {
		return "", err
	}
	if old := t.Feature(name); old != nil {
		return "", fmt.Errorf("feature %q %w (%s); to replace a built-in one, copy its file to %s and edit it", name, ErrExists, old.Source, filepath.Join(customDir, "features", name+".json"))
	}
	tmpl := "feature.json"
	if component != "" {
		if !moduleNameRE().MatchString(component) || !subdomainRE().MatchString(base) {
			return "", fmt.Errorf("component %q of %s: %w: the type is a module name and the feature's name becomes the subdomain (a-z, 0-9, -)", component, name, ErrBadName)
		}
		tmpl = "component.json"
	}
	var f Feature
	if err := decodeStrict(filepath.Join(builtinDir, "templates", tmpl), &f); err != nil {
		return "", fmt.Errorf("feature template %s: %w", tmpl, err)
	}
	f.Name = name
	if spec, ok := f.Components["NAME"]; ok && component != "" {
		spec.Type, spec.Subdomain = component, base
		f.Components = map[string]ComponentSpec{base: spec}
	}
	return writeCustom(builtinDir, customDir, filepath.Join("features", group, base+".json"), &f)
}

func loadForCreate(builtinDir, customDir, kind, name string) (*Tree, error) {
	if kind == "profile" {
		if err := CheckName("profile", name); err != nil {
			return nil, fmt.Errorf("%w (%w)", err, ErrBadName)
		}
	}
	if customDir == "" {
		return nil, ErrNoCustomDir
	}
	return Load(builtinDir, customDir)
}

// writeCustom writes v as JSON to rel under customDir, atomically, and removes it again
// when the tree no longer loads with it.
func writeCustom(builtinDir, customDir, rel string, v any) (string, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", rel, err)
	}
	path := filepath.Join(customDir, rel)
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("%s %w; edit it instead", path, ErrExists)
	}
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create directory %s: %w", dir, err)
	}
	if _, err := atomicfile.Write(path, append(data, '\n'), 0o644, -1, -1); err != nil {
		return "", err
	}
	if _, err := Load(builtinDir, customDir); err != nil {
		// Never leave a file that breaks the tree.
		if statErr != nil {
			_ = os.RemoveAll(dir)
		} else {
			_ = os.Remove(path)
		}
		return "", err
	}
	return path, nil
}
