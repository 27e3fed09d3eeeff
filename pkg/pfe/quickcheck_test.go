package pfe

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestQuickCheckNeverPassesAProblem: quickCheck (the fast path of the strict
// decode) answers false for every file checkJSON refuses, so no problem is
// let through and every message still comes from checkJSON.
func TestQuickCheckNeverPassesAProblem(t *testing.T) {
	deep := func(n int) string { return strings.Repeat(`{"a": `, n) + "1" + strings.Repeat("}", n) }
	profile := func(extra string) string { return `{"name": "team", "features": ["messaging/core"]` + extra + `}` }
	many := func(last string) string { // more keys than quickCheck compares pairwise
		var b strings.Builder
		for i := range 40 {
			b.WriteString(`"k` + strings.Repeat("x", i) + `": 1, `)
		}
		return profile(`, "global": {"settings": {` + b.String() + last + `}}`)
	}
	pt := reflect.TypeFor[*Profile]()
	for name, file := range map[string]string{
		"duplicate top-level key":   `{"name": "team", "features": [], "features": ["messaging/core"]}`,
		"duplicate option":          profile(`, "global": {"settings": {"c2s_timeout": 1, "c2s_timeout": 2}}`),
		"duplicate among many":      many(`"kxxx": 2`),
		"duplicate inside a value":  profile(`, "global": {"settings": {"limits": {"c2s": {"rate": "1kb/s", "rate": "9kb/s"}}}}`),
		"duplicate spelled escaped": `{"name": "team", "n\u0061me": "x", "features": []}`,
		"duplicate after U+FFFD":    "{\"name\": \"team\", \"features\": [], \"global\": {\"settings\": {\"a\xff\": 1, \"a\xfe\": 2}}}",
		"wrong case":                `{"Name": "team", "features": []}`,
		"wrong case nested":         profile(`, "global": {"Settings": {"c2s_timeout": 1}}`),
		"wrong case in a when":      profile(`, "when": [{"If": {"storage": "sqlite"}}]`),
		"unknown key":               profile(`, "colour": "blue"`),
		"integer beyond int64":      profile(`, "global": {"settings": {"max_size": 12345678901234567890}}`),
		"integer beyond 2^53":       profile(`, "global": {"settings": {"max_size": 9007199254740993}}`),
		"negative beyond 2^53":      profile(`, "global": {"settings": {"list": [1, -9007199254740992]}}`),
		"float beyond float64":      profile(`, "global": {"settings": {"x": 1e400}}`),
		"nesting 33 deep":           profile(`, "global": {"settings": {"x": ` + deep(30) + `}}`),
		"arrays 33 deep":            profile(`, "global": {"settings": {"x": ` + strings.Repeat("[", 30) + strings.Repeat("]", 30) + `}}`),
		"nesting 20000 deep":        profile(`, "global": {"settings": {"x": ` + deep(20000) + `}}`),
		"syntax error":              "{\n  \"name\": \"team\"\n  \"features\": []\n}\n",
		"data after the value":      `{"name": "team", "features": []} {}`,
		"empty file":                "",
	} {
		if checkJSON([]byte(file), pt) == nil {
			t.Errorf("%s: checkJSON found no problem: the case is wrong", name)
		}
		if quickCheck([]byte(file), pt) {
			t.Errorf("%s: quickCheck passed a file checkJSON refuses", name)
		}
	}
	limits := profile(`, "global": {"settings": {"a": 9007199254740991, "b": -9007199254740991, "c": 1.5e300, "d": 0.1, "e": ` + deep(29) + `, "s": "\"\\ é"}}`)
	if !quickCheck([]byte(limits), pt) {
		t.Errorf("quickCheck refused values at the limits")
	}
}

// TestQuickCheckPassesTheShippedTree: every shipped file takes the fast
// path (otherwise it saves nothing) and checkJSON agrees it is clean.
func TestQuickCheckPassesTheShippedTree(t *testing.T) {
	types := map[string]reflect.Type{
		"core": reflect.TypeFor[*Core](), "profiles": reflect.TypeFor[*Profile](), "features": reflect.TypeFor[*Feature](),
		"environments": reflect.TypeFor[*Environment](), "templates": reflect.TypeFor[*VHostTemplate](),
	}
	root := filepath.Join("..", "..", "config")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		typ, ok := types[strings.Split(rel, string(filepath.Separator))[0]]
		if !ok || strings.HasPrefix(rel, "templates") && rel != filepath.Join("templates", VHostTemplateFile) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if p := checkJSON(data, typ); p != nil {
			t.Errorf("%s: checkJSON: %s", rel, p.msg)
		}
		if !quickCheck(data, typ) {
			t.Errorf("%s: quickCheck refused a clean shipped file", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 40 {
		t.Errorf("checked %d shipped files, want the whole tree", n)
	}
}
