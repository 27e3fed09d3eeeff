package pfe

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
)

// resolve turns a decoded tree value into a plan value: numbers become int64 or float64,
// $var is replaced by the input, $credential becomes a Credential, $lua a LuaCode marked
// with the tree file it came from, $tree the absolute path of a file in the built-in tree. top reports whether v is a whole option value: an
// unset $var there leaves the option out (set=false); nested, it is an error.
func (b *builder) resolve(v any, source string, top bool) (val any, set bool, err error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return i, true, nil
		}
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil {
			return nil, false, fmt.Errorf("number %s is out of range", x)
		}
		return f, true, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, e := range x {
			r, _, err := b.resolve(e, source, false)
			if err != nil {
				return nil, false, fmt.Errorf("element %d: %w", i, err)
			}
			out = append(out, r)
		}
		return out, true, nil
	case map[string]any:
		special, err := specialKey(x)
		if err != nil {
			return nil, false, err
		}
		switch special {
		case "$var":
			name, _ := x[special].(string)
			iv, ok := b.in.inputValue(name, b.logLevel)
			if !ok {
				if top {
					return nil, false, nil
				}
				return nil, false, fmt.Errorf("$var %q is not set, and it is inside a table, so it cannot be left out", name)
			}
			return iv, true, nil
		case "$credential":
			name, _ := x[special].(string)
			return Credential{Name: name}, true, nil
		case "$lua":
			code, _ := x[special].(string)
			return LuaCode{Code: code, Source: source}, true, nil
		case "$tree":
			rel, _ := x[special].(string)
			return filepath.Join(b.treeDir, rel), true, nil
		}
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			r, _, err := b.resolve(x[k], source, false)
			if err != nil {
				return nil, false, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = r
		}
		return out, true, nil
	}
	return v, true, nil
}
