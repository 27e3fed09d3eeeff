// Package deploy validates the container and deployment files (Dockerfile, compose/, docker/)
// with the real tools that consume them: nginx -t, promtool, docker-compose config and
// kubectl kustomize. A missing tool fails the test with the Debian package to install.
package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// repoRoot is the repository root, found from this file's location so that tests run from
// any working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// requireTool returns the path of an executable, or fails the test naming the Debian package
// that provides it (CI must install it; a skip would hide that).
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH: install the Debian package %q (apt-get install %s)", name, debianPackage, debianPackage)
	}
	return path
}

// runTool runs a command with an explicit environment and returns stdout; a non-zero exit fails
// the test with both outputs.
func runTool(t *testing.T, dir string, env []string, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, errOut, err := tryTool(dir, env, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out, errOut)
	}
	return out
}

func tryTool(dir string, env []string, stdin []byte, name string, args ...string) ([]byte, []byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// yamlDocs decodes a stream of YAML documents into generic JSON values, with a real YAML
// parser (PyYAML, which docker-compose itself depends on): the Go module set of this project
// has no YAML library.
func yamlDocs(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	requireTool(t, "python3", "python3")
	const conv = `import sys, json
try:
    import yaml
except ImportError:
    sys.exit("PyYAML missing: install the Debian package python3-yaml")
json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout, default=str)`
	out := runTool(t, "", os.Environ(), data, "python3", "-c", conv)
	var docs []map[string]any
	if err := json.Unmarshal(out, &docs); err != nil {
		t.Fatalf("decode YAML documents: %v", err)
	}
	return docs
}

// dig walks nested maps and lists by keys (string) and indexes (int); ok is false when any
// step is missing or of another type.
func dig(v any, path ...any) (any, bool) {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil, false
			}
			v = l[k]
		}
	}
	return v, true
}

func digString(v any, path ...any) string {
	s, _ := dig(v, path...)
	str, _ := s.(string)
	return str
}

// jsonString is v as compact JSON, for comparing decoded values with a literal.
func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
