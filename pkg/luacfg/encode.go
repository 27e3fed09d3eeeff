// Package luacfg turns a pfe.Plan into prosody.cfg.lua: one Lua literal encoder through
// which every value passes, a pure deterministic renderer, an atomic writer and a checker
// (luac syntax check, then `prosodyctl check config`).
//
// Rendered files use Lua 5.1 syntax only, so they load in every Lua Prosody supports.
package luacfg

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// String returns a double-quoted Lua string literal that evaluates to exactly the bytes of
// s. Printable ASCII is kept except '"' and '\'; every other byte (control characters,
// newlines, bytes >= 0x7f, invalid UTF-8) is a three-digit decimal escape \ddd, which Lua
// 5.1 to 5.4 all read the same way. The output never contains a raw newline or "]]".
func String(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		case c == ']' && i+1 < len(s) && s[i+1] == ']':
			// Keeps "]]" out of the file, so the literal is safe even inside a long
			// bracket comment.
			b.WriteString("\\093")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Value encodes v as a Lua expression. Accepted: nil-free values of type bool, every int
// and uint type, finite float32/float64, json.Number, string, []string, []any,
// map[string]any (keys sorted; a key is bare when it is a Lua identifier and not a keyword,
// else ["..."]), pfe.Credential (Credential("name")) and pfe.LuaCode with a Source (raw
// code from a tree file). Anything else, NaN, infinities and LuaCode without Source are
// errors.
func Value(v any) (string, error) {
	var b strings.Builder
	if err := encode(&b, v, 0, false); err != nil {
		return "", err
	}
	return b.String(), nil
}

// valueIndented encodes v, spreading big tables over lines indented by depth tabs.
func valueIndented(v any, depth int) (string, error) {
	var b strings.Builder
	if err := encode(&b, v, depth, true); err != nil {
		return "", err
	}
	return b.String(), nil
}

func encode(b *strings.Builder, v any, depth int, pretty bool) error {
	switch x := v.(type) {
	case nil:
		return fmt.Errorf("nil cannot be encoded: Lua tables cannot hold nil")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		b.WriteString(String(x))
	case int:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int8:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int16:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int32:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case uint:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint8:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint16:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint32:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case float32:
		return encodeFloat(b, float64(x))
	case float64:
		return encodeFloat(b, x)
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			b.WriteString(strconv.FormatInt(i, 10))
			return nil
		}
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil {
			return fmt.Errorf("number %q: %w", x.String(), err)
		}
		return encodeFloat(b, f)
	case pfe.Credential:
		if x.Name == "" {
			return fmt.Errorf("credential without a name")
		}
		b.WriteString("Credential(" + String(x.Name) + ")")
	case pfe.LuaCode:
		if x.Source == "" {
			return fmt.Errorf("raw Lua without a source file is refused: raw Lua is only accepted from files of the config tree")
		}
		b.WriteString(x.Code)
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return encodeList(b, items, depth, pretty)
	case []any:
		return encodeList(b, x, depth, pretty)
	case map[string]any:
		return encodeMap(b, x, depth, pretty)
	default:
		return fmt.Errorf("value of type %T cannot be encoded as Lua", v)
	}
	return nil
}

func encodeFloat(b *strings.Builder, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("number %v is not finite", f)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0" // keep it a float in Lua 5.3+
	}
	b.WriteString(s)
	return nil
}

// tableItem is one encoded element or key = value pair.
func writeTable(b *strings.Builder, items []string, depth int, pretty bool) {
	if len(items) == 0 {
		b.WriteString("{}")
		return
	}
	total := 0
	for _, it := range items {
		total += len(it) + 2
	}
	if !pretty || total+depth*8 <= 80 && !strings.Contains(strings.Join(items, ""), "\n") {
		b.WriteString("{ " + strings.Join(items, ", ") + " }")
		return
	}
	indent := strings.Repeat("\t", depth+1)
	b.WriteString("{\n")
	for _, it := range items {
		b.WriteString(indent + it + ";\n")
	}
	b.WriteString(strings.Repeat("\t", depth) + "}")
}

func encodeList(b *strings.Builder, list []any, depth int, pretty bool) error {
	items := make([]string, 0, len(list))
	for i, e := range list {
		var eb strings.Builder
		if err := encode(&eb, e, depth+1, pretty); err != nil {
			return fmt.Errorf("element %d: %w", i+1, err)
		}
		items = append(items, eb.String())
	}
	writeTable(b, items, depth, pretty)
	return nil
}

func encodeMap(b *strings.Builder, m map[string]any, depth int, pretty bool) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([]string, 0, len(keys))
	for _, k := range keys {
		var eb strings.Builder
		if pfe.IsLuaIdentifier(k) {
			eb.WriteString(k)
		} else {
			eb.WriteString("[" + String(k) + "]")
		}
		eb.WriteString(" = ")
		if err := encode(&eb, m[k], depth+1, pretty); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		items = append(items, eb.String())
	}
	writeTable(b, items, depth, pretty)
	return nil
}
