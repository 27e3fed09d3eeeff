// Package luacfg turns a pfe.Plan into prosody.cfg.lua: one Lua literal encoder through
// which every value passes, a pure deterministic renderer, an atomic writer and a checker
// (luac syntax check, then `prosodyctl check config`).
//
// Rendered files use Lua 5.1 syntax only, so they load in every Lua Prosody supports.
package luacfg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

// String returns a double-quoted Lua string literal that evaluates to exactly the bytes of
// s. Printable ASCII is kept except '"' and '\'; every other byte (control characters,
// newlines, bytes >= 0x7f, invalid UTF-8) is a three-digit decimal escape \ddd, which Lua
// 5.1 to 5.4 all read the same way. The output never contains a raw newline or "]]".
func String(s string) string {
	return string(appendString(make([]byte, 0, len(s)+2), s))
}

// appendString appends String(s) to b.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c < 0x20 || c >= 0x7f:
			b = append(b, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		case c == ']' && i+1 < len(s) && s[i+1] == ']':
			// Keeps "]]" out of the file, so the literal is safe even inside a long
			// bracket comment.
			b = append(b, '\\', '0', '9', '3')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Value encodes v as a Lua expression. Accepted: nil-free values of type bool, every int
// and uint type, finite float32/float64, json.Number, string, []string, []any,
// map[string]any (keys sorted; a key is bare when it is a Lua identifier and not a keyword,
// else ["..."]), pfe.Credential (Credential("name")) and pfe.LuaCode with a Source (raw
// code from a tree file), with tables nested at most pfe.MaxDepth deep (luac5.4 refuses
// 197). Anything else, NaN, infinities and LuaCode without Source are errors. The time it
// takes is linear in the size of the result.
func Value(v any) (string, error) {
	e := encoder{}
	if err := e.value(v, 0, 0); err != nil {
		return "", err
	}
	return string(e.buf), nil
}

// valueIndented encodes v, spreading big tables over lines indented by depth tabs.
func valueIndented(v any, depth int) (string, error) {
	e := encoder{pretty: true}
	if err := e.value(v, depth, 0); err != nil {
		return "", err
	}
	return string(e.buf), nil
}

// encoder writes every value into one buffer, so that a table's elements are written once
// where they end up: the time is linear in the output, whatever the nesting.
type encoder struct {
	buf    []byte
	pretty bool
}

// value appends v; indent is the indentation of the line v starts on (pretty form), nest
// the number of tables around v.
func (e *encoder) value(v any, indent, nest int) error {
	switch x := v.(type) {
	case nil:
		return fmt.Errorf("nil cannot be encoded: Lua tables cannot hold nil")
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		e.buf = appendString(e.buf, x)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int8:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int16:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint8:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint16:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case float32:
		return e.float(float64(x))
	case float64:
		return e.float(x)
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			e.buf = strconv.AppendInt(e.buf, i, 10)
			return nil
		}
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil {
			return fmt.Errorf("number %q: %w", x.String(), err)
		}
		return e.float(f)
	case pfe.Credential:
		if x.Name == "" {
			return fmt.Errorf("credential without a name")
		}
		e.buf = append(e.buf, "Credential("...)
		e.buf = appendString(e.buf, x.Name)
		e.buf = append(e.buf, ')')
	case pfe.LuaCode:
		if x.Source == "" {
			return fmt.Errorf("raw Lua without a source file is refused: raw Lua is only accepted from files of the config tree")
		}
		e.buf = append(e.buf, x.Code...)
	case []string:
		return e.table(len(x), indent, nest, func(i int) error {
			e.buf = appendString(e.buf, x[i])
			return nil
		})
	case []any:
		return e.table(len(x), indent, nest, func(i int) error {
			if err := e.value(x[i], indent+1, nest+1); err != nil {
				return fmt.Errorf("element %d: %w", i+1, err)
			}
			return nil
		})
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return e.table(len(keys), indent, nest, func(i int) error {
			k := keys[i]
			if pfe.IsLuaIdentifier(k) {
				e.buf = append(e.buf, k...)
			} else {
				e.buf = append(e.buf, '[')
				e.buf = appendString(e.buf, k)
				e.buf = append(e.buf, ']')
			}
			e.buf = append(e.buf, " = "...)
			if err := e.value(x[k], indent+1, nest+1); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			return nil
		})
	default:
		return fmt.Errorf("value of type %T cannot be encoded as Lua", v)
	}
	return nil
}

func (e *encoder) float(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("number %v is not finite", f)
	}
	start := len(e.buf)
	e.buf = strconv.AppendFloat(e.buf, f, 'g', -1, 64)
	if !bytes.ContainsAny(e.buf[start:], ".eEn") {
		e.buf = append(e.buf, ".0"...) // keep it a float in Lua 5.3+
	}
	return nil
}

// compactWidth is the widest a table may be, with 8 columns per tab of indentation, to
// stay on one line in the pretty form.
const compactWidth = 80

// table appends a table of n items, item(i) appending the i-th (an element, or key = value)
// in place. Without pretty, or when the items are short and on one line each, the table is
// written "{ a, b }"; otherwise one item a line, indented by indent+1 tabs, each ended by
// ";". Items are written once, in the multi-line form; only a table short enough for one
// line (at most compactWidth bytes) is rewritten, so the cost stays linear.
func (e *encoder) table(n, indent, nest int, item func(i int) error) error {
	if nest >= pfe.MaxDepth {
		return fmt.Errorf("tables nested more than %d deep: accepted are at most %d levels (Prosody options need a few)", pfe.MaxDepth, pfe.MaxDepth)
	}
	if n == 0 {
		e.buf = append(e.buf, "{}"...)
		return nil
	}
	if !e.pretty {
		e.buf = append(e.buf, "{ "...)
		for i := range n {
			if i > 0 {
				e.buf = append(e.buf, ", "...)
			}
			if err := item(i); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, " }"...)
		return nil
	}
	start := len(e.buf)
	e.buf = append(e.buf, '{', '\n')
	// The spans of the items while a one-line form is still possible.
	budget := compactWidth - indent*8
	var spans [][2]int
	total := 0
	for i := range n {
		e.buf = appendTabs(e.buf, indent+1)
		from := len(e.buf)
		if err := item(i); err != nil {
			return err
		}
		total += len(e.buf) - from + 2
		if total <= budget {
			spans = append(spans, [2]int{from, len(e.buf)})
		}
		e.buf = append(e.buf, ';', '\n')
	}
	e.buf = appendTabs(e.buf, indent)
	e.buf = append(e.buf, '}')
	if total > budget {
		return nil
	}
	// One line: every item is in spans (total <= budget <= compactWidth bytes).
	line := make([]byte, 0, total+2)
	line = append(line, "{ "...)
	for i, sp := range spans {
		it := e.buf[sp[0]:sp[1]]
		if bytes.IndexByte(it, '\n') >= 0 {
			return nil
		}
		if i > 0 {
			line = append(line, ", "...)
		}
		line = append(line, it...)
	}
	line = append(line, " }"...)
	e.buf = append(e.buf[:start], line...)
	return nil
}

func appendTabs(b []byte, n int) []byte {
	for range n {
		b = append(b, '\t')
	}
	return b
}
