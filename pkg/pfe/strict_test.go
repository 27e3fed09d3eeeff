package pfe_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// customTree is the test tree with one custom profile "team" whose file is profileJSON.
func customTree(t *testing.T, profileJSON string) (custom, path string) {
	t.Helper()
	custom = t.TempDir()
	path = filepath.Join(custom, "profiles", "team", "profile.json")
	writeFile(t, path, profileJSON)
	return custom, path
}

// loadWithin runs pfe.Load and fails the test when it has not returned within limit (the
// old code blocked forever on a FIFO, ignoring SIGTERM). release is called then, to
// unblock the leaked call.
func loadWithin(t *testing.T, limit time.Duration, builtin, custom string, release func()) (*pfe.Tree, error) {
	t.Helper()
	type result struct {
		tree *pfe.Tree
		err  error
	}
	done := make(chan result, 1)
	go func() {
		tree, err := pfe.Load(builtin, custom)
		done <- result{tree, err}
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.tree, r.err
	case <-timer.C:
		release()
		t.Fatalf("pfe.Load(%s, %s) has not returned after %s: it blocks", builtin, custom, limit)
		return nil, nil
	}
}

// mkfifo makes a FIFO at path and returns a function that opens it for writing without
// blocking, which releases a reader blocked on it.
func mkfifo(t *testing.T, path string) func() {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	}
}

// TestLoadRefusesFIFOs: a FIFO where the tree has a file (profile.json, a
// feature file, a core file, an environment, a legacy file) is an error naming it,
// at once; the old code opened it and blocked forever.
func TestLoadRefusesFIFOs(t *testing.T) {
	for _, rel := range []string{
		"custom:profiles/team/profile.json",
		"custom:features/mobile/fifo.json",
		"builtin:core/fifo.json",
		"builtin:environments/fifo.json",
		"builtin:legacy/modules.d/fifo.cfg.lua",
	} {
		t.Run(rel, func(t *testing.T) {
			builtin := t.TempDir()
			copyTree(t, "testdata/tree", builtin)
			custom := t.TempDir()
			where, name, _ := strings.Cut(rel, ":")
			root := custom
			if where == "builtin" {
				root = builtin
			}
			fifo := filepath.Join(root, name)
			release := mkfifo(t, fifo)
			_, err := loadWithin(t, 5*time.Second, builtin, custom, release)
			if err == nil || !strings.Contains(err.Error(), fifo) {
				t.Fatalf("Load = %v; want an error naming %s", err, fifo)
			}
			if !strings.Contains(err.Error(), "named pipe (FIFO)") {
				t.Errorf("Load = %v; want it to say what the file is", err)
			}
		})
	}
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(dst, rel), string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLoadRefusesAmbiguousJSON: what encoding/json silently accepted (a duplicate key, the
// last one winning; a key in the wrong case, matched anyway; an integer turned into a float
// that is not the number written; nesting without end; a huge file) is an error naming the
// file, the key and what is accepted.
func TestLoadRefusesAmbiguousJSON(t *testing.T) {
	deep := func(n int) string {
		return strings.Repeat(`{"a": `, n) + "1" + strings.Repeat("}", n)
	}
	profile := func(extra string) string {
		return `{"name": "team", "features": ["messaging/core"]` + extra + `}`
	}
	for _, tc := range []struct {
		name, file, key, want string
	}{
		{"duplicate top-level key", `{"name": "team", "features": [], "features": ["messaging/core"]}`,
			"features", "appears twice in one object"},
		{"duplicate option", profile(`, "global": {"settings": {"c2s_timeout": 1, "c2s_timeout": 2}}`),
			"global.settings.c2s_timeout", "appears twice in one object"},
		{"duplicate key inside a value", profile(`, "global": {"settings": {"limits": {"c2s": {"rate": "1kb/s", "rate": "9kb/s"}}}}`),
			"global.settings.limits.c2s.rate", "appears twice"},
		{"wrong case", `{"Name": "team", "features": []}`,
			"Name", `keys are case-sensitive, write "name"`},
		{"wrong case nested", profile(`, "global": {"Settings": {"c2s_timeout": 1}}`),
			"global.Settings", `keys are case-sensitive, write "settings"`},
		{"wrong case in a when block", profile(`, "when": [{"If": {"storage": "sqlite"}}]`),
			"when[0].If", `write "if"`},
		{"integer beyond int64", profile(`, "global": {"settings": {"max_size": 12345678901234567890}}`),
			"global.settings.max_size", "integer 12345678901234567890 is out of range: accepted are integers from -9007199254740991 to 9007199254740991"},
		{"integer beyond 2^53", profile(`, "global": {"settings": {"max_size": 9007199254740993}}`),
			"global.settings.max_size", "integer 9007199254740993 is out of range"},
		{"negative integer beyond 2^53", profile(`, "global": {"settings": {"list": [1, -9007199254740992]}}`),
			"global.settings.list[1]", "is out of range"},
		{"float beyond float64", profile(`, "global": {"settings": {"x": 1e400}}`),
			"global.settings.x", "out of the range of a 64-bit float"},
		{"nesting 33 deep", profile(`, "global": {"settings": {"x": ` + deep(30) + `}}`),
			"global.settings.x" + strings.Repeat(".a", 29), "nested deeper than 32 levels"},
		{"nesting 4000 deep", profile(`, "global": {"settings": {"x": ` + deep(4000) + `}}`),
			"global.settings.x" + strings.Repeat(".a", 29), "a tree file may nest at most 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			custom, path := customTree(t, tc.file)
			start := time.Now()
			_, err := pfe.Load("testdata/tree", custom)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Load took %s", took)
			}
			want := path + ": key \"" + tc.key + "\": "
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v\nwant %q and %q", err, want, tc.want)
			}
		})
	}

	// The limits themselves are accepted: ±(2^53-1), floats, 32 levels.
	custom, _ := customTree(t, profile(`, "global": {"settings": {"a": 9007199254740991, "b": -9007199254740991, "c": 1.5e300, "d": 0.1, "e": `+deep(29)+`}}`))
	tree, err := pfe.Load("testdata/tree", custom)
	if err != nil {
		t.Fatalf("Load refused values at the limits: %v", err)
	}
	p, err := tree.Plan(baseInputs("team", "production"))
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := option(p.Global, "a"); !ok || o.Value != int64(9007199254740991) {
		t.Errorf("a = %#v, want int64 9007199254740991", o.Value)
	}

	// A file over 1 MiB.
	big := `{"name": "team", "description": "` + strings.Repeat("x", pfe.MaxFileBytes) + `", "features": []}`
	custom, path := customTree(t, big)
	_, err = pfe.Load("testdata/tree", custom)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("Load of a %d-byte file = %v; want an error naming it and the 1 MiB cap", len(big), err)
	}
}

// TestLoadReportsSyntaxLine: a syntax error names the file and its line.
func TestLoadReportsSyntaxLine(t *testing.T) {
	custom, path := customTree(t, "{\n  \"name\": \"team\",\n  \"description\": \"a comma is missing\"\n  \"features\": []\n}\n")
	_, err := pfe.Load("testdata/tree", custom)
	if err == nil || !strings.Contains(err.Error(), path+":4: invalid JSON") {
		t.Errorf("Load = %v; want %s:4: invalid JSON", err, path)
	}
}

// TestCheckName is the one name rule of profiles and features.
func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		kind, name string
		want       string // "" accepted, else part of the error
	}{
		{"profile", "standard", ""},
		{"profile", "my_team", ""},
		{"profile", "my-team-2", ""},
		{"profile", "0day", ""},
		{"profile", strings.Repeat("a", 64), ""},
		{"profile", strings.Repeat("a", 65), "is 65 characters long"},
		{"profile", "", "is empty"},
		{"profile", "My-Team", `has 'M'`},
		{"profile", "_team", `starts with "_"`},
		{"profile", "-team", `starts with "-"`},
		{"profile", "a/b", `has '/'`},
		{"profile", "a.b", `has '.'`},
		{"profile", "tëam", `has 'ë'`},
		{"profile", "x\xff", "the byte 0xff"},
		{"feature", "web/admin", ""},
		{"feature", "mobile/battery-saver", ""},
		{"feature", "my_group/my_feature", ""},
		{"feature", "admin", "is not <group>/<name>"},
		{"feature", "a/b/c", "is not <group>/<name>"},
		{"feature", "Web/admin", `group "Web" has 'W'`},
		{"feature", "web/", `name "" is empty`},
	} {
		err := pfe.CheckName(tc.kind, tc.name)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckName(%q, %q) = %v, want nil", tc.kind, tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckName(%q, %q) = %v, want %q", tc.kind, tc.name, err, tc.want)
		case err != nil && !strings.Contains(err.Error(), pfe.NameRule):
			t.Errorf("CheckName(%q, %q) = %v does not say what is accepted", tc.kind, tc.name, err)
		}
	}
}

// TestLoadAppliesTheNameRule: a custom profile directory or feature file whose name
// PROSODY_PROFILE or PROSODY_FEATURES could not name is an error naming it; my_team, which
// `profiles create` makes, loads.
func TestLoadAppliesTheNameRule(t *testing.T) {
	custom := t.TempDir()
	writeFile(t, filepath.Join(custom, "profiles", "my_team", "profile.json"), `{"name": "my_team", "features": []}`)
	tree, err := pfe.Load("testdata/tree", custom)
	if err != nil || tree.Profile("my_team") == nil {
		t.Fatalf("Load = %v; want my_team loaded", err)
	}
	writeFile(t, filepath.Join(custom, "profiles", "My Team", "profile.json"), `{"name": "My Team", "features": []}`)
	writeFile(t, filepath.Join(custom, "features", "web", "Admin.json"), `{"name": "web/Admin"}`)
	_, err = pfe.Load("testdata/tree", custom)
	for _, want := range []string{
		filepath.Join(custom, "profiles") + `: profile name "My Team" has 'M'`,
		filepath.Join(custom, "features", "web") + `: feature name "web/Admin": name "Admin" has 'A'`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v\nwant %q", err, want)
		}
	}
}

// TestLoadQuotesWhatItEchoes: names from the custom directory and toggle names reach the
// messages quoted, never as raw terminal escapes or line breaks (a fake log line).
func TestLoadQuotesWhatItEchoes(t *testing.T) {
	const evil = "x\x1b[31m\nlevel=error msg=forged"
	custom := t.TempDir()
	writeFile(t, filepath.Join(custom, "profiles", evil, "profile.json"), `{"name": "x", "features": []}`)
	writeFile(t, filepath.Join(custom, "features", "web", evil+".json"), `{"name": "web/x"}`)
	writeFile(t, filepath.Join(custom, "features", evil, "x.json"), `{"name": "x/x"}`)
	writeFile(t, filepath.Join(custom, "features", evil+".json"), `{}`)
	_, err := pfe.Load("testdata/tree", custom)
	var le *pfe.LoadError
	if !errors.As(err, &le) || len(le.Errs) != 4 {
		t.Fatalf("Load = %v; want 4 problems", err)
	}
	for _, e := range le.Errs {
		if strings.ContainsAny(e.Error(), "\x1b\n") {
			t.Errorf("problem holds a raw escape or newline: %q", e.Error())
		}
		if !strings.Contains(e.Error(), `x\x1b[31m\nlevel=error`) {
			t.Errorf("problem does not show the name quoted: %q", e.Error())
		}
	}
	if _, err := pfe.Load("testdata/"+evil, ""); err == nil || strings.ContainsAny(err.Error(), "\x1b\n") {
		t.Errorf("Load of a directory named with escapes = %q", err)
	}

	// A toggle variable's name and a custom feature's texts reach plan errors quoted.
	tree := loadTestTree(t)
	in := baseInputs("small", "production")
	in.Toggles = map[string]string{"PROSODY_FEATURES_" + evil: "true", "PROSODY_FEATURES_MOBILE_PUSH": evil}
	_, err = tree.Plan(in)
	if err == nil || strings.ContainsAny(err.Error(), "\x1b") || strings.Count(err.Error(), "\n") > 1 {
		t.Errorf("Plan = %q; want the toggle name and value quoted", err)
	}
	custom = t.TempDir()
	writeFile(t, filepath.Join(custom, "features", "web", "gone.json"),
		`{"name": "web/gone", "stability": "unsupported", "unsupported": {"reason": "old\u001b[31m\nlevel=error", "instead": "new\u001b[0m"}}`)
	tree, err = pfe.Load("testdata/tree", custom)
	if err != nil {
		t.Fatal(err)
	}
	in = baseInputs("small", "production")
	in.FeatureList = "+web/gone"
	_, err = tree.Plan(in)
	if err == nil || !strings.Contains(err.Error(), "cannot be enabled") || strings.ContainsAny(err.Error(), "\x1b\n") {
		t.Errorf("Plan = %q; want the unsupported reason quoted", err)
	}
}
