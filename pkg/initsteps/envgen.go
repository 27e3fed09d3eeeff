package initsteps

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// TreeFromEnv loads the config tree that PROSODY_CONFIG_DIR and PROSODY_CUSTOM_DIR of
// environ name; the other variables do not matter to it (env generate writes them).
func TreeFromEnv(environ []string) (*pfe.Tree, error) {
	st, _, _, err := settings.LoadLenient(environ, func(name string) bool { return name == "PROSODY_CONFIG_DIR" || name == "PROSODY_CUSTOM_DIR" })
	if err != nil {
		return nil, err
	}
	return pfe.Load(st.ConfigDir, st.CustomDir)
}

// EnvFileName is the name the design's env generator gives the file of a profile and
// environment: .env.<profile>.<environment>.
func EnvFileName(profile, environment string) string {
	return ".env." + profile + "." + environment
}

// GenerateEnv writes the .env file of profile in environment to w (settings.GenerateWith
// with the profile's feature toggles). A profile the tree does not have is refused.
func GenerateEnv(w io.Writer, tree *pfe.Tree, profile, environment string) error {
	if tree.Profile(profile) == nil {
		return fmt.Errorf("profile %q does not exist; profiles: %s", profile, strings.Join(tree.Profiles(), ", "))
	}
	var toggles []settings.Toggle
	for _, tg := range tree.ProfileToggles(profile) {
		toggles = append(toggles, settings.Toggle{Name: tg.Name, On: tg.On})
	}
	return settings.GenerateWith(w, profile, environment, toggles)
}

// WriteEnvFiles writes dir/.env.<profile>.<environment> for each of environments
// (every environment of the tree when environments is empty), atomically, and returns
// the paths written. Nothing is written when the profile or an environment is unknown.
func WriteEnvFiles(tree *pfe.Tree, profile string, environments []string, dir string) ([]string, error) {
	if len(environments) == 0 {
		environments = tree.Environments()
	}
	files := make(map[string][]byte, len(environments))
	for _, env := range environments {
		var b bytes.Buffer
		if err := GenerateEnv(&b, tree, profile, env); err != nil {
			return nil, err
		}
		files[env] = b.Bytes()
	}
	var paths []string
	for _, env := range environments {
		path := filepath.Join(dir, EnvFileName(profile, env))
		if _, err := atomicfile.Write(path, files[env], 0o600, -1, -1); err != nil {
			return paths, fmt.Errorf("write %s: %w", path, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}
