package pfe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
)

// MaxDepth is the deepest nesting of objects and arrays a tree file may have; the file's
// own object is level 1. The shipped files use at most 8 and Prosody's options need a few,
// so 32 leaves room while keeping every rendered Lua table far below the 196 nested tables
// luac5.4 accepts, and loading, planning and rendering fast. The Lua encoder (pkg/luacfg)
// refuses values nested deeper than this too.
const MaxDepth = 32

// MaxFileBytes is the largest tree file Load reads: 1 MiB (the shipped files are a few KiB).
const MaxFileBytes = 1 << 20

// MaxExactInt is the largest integer a tree file may hold (2^53-1), and -MaxExactInt the
// smallest: every JSON reader and every Lua number type (floats in Lua 5.1 and LuaJIT)
// holds these exactly, so the value Prosody reads is the value written.
const MaxExactInt = 1<<53 - 1

// jsonProblem is what is wrong with a tree file, before the file name is added.
type jsonProblem struct {
	line int    // for syntax errors, else 0
	key  string // the key path ("global.settings.x", "when[0].if"), "" for the whole file
	msg  string
	err  error // wrapped, may be nil
}

// decodeStrict reads one tree file into v: a regular file of at most MaxFileBytes (a FIFO
// or device is refused at once, never blocking), one JSON value nested at most MaxDepth
// deep, with no duplicate key, every key of the format spelled exactly (case-sensitive),
// integers within ±MaxExactInt, and nothing after the value. Errors name the file, the key
// path and what is accepted.
func decodeStrict(path string, v any) error {
	data, err := readTreeFile(path)
	if err != nil {
		return err
	}
	return decodeData(path, data, v)
}

// decodeStrictIn is decodeStrict of the file name in the directory dir, open as d
// (openTreeDir; nil: read by path).
func decodeStrictIn(d *atomicfile.Dir, dir, name string, v any) error {
	data, err := readTreeFileIn(d, dir, name)
	if err != nil {
		return err
	}
	return decodeData(filepath.Join(dir, name), data, v)
}

// decodeData is decodeStrict of data, read from path.
func decodeData(path string, data []byte, v any) error {
	// Most files are clean: quickCheck says so without checkJSON's token
	// pass, which costs twice the decode; checkJSON explains any problem.
	if t := reflect.TypeOf(v); !quickCheck(data, t) {
		if p := checkJSON(data, t); p != nil {
			return problemError(path, p)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w (keys and types are listed in docs/config-format.md)", path, err)
	}
	return nil
}

// problemError is the error for problem p of the tree file at path.
func problemError(path string, p *jsonProblem) error {
	var msg string
	switch {
	case p.line > 0:
		msg = fmt.Sprintf("%s:%d: invalid JSON: %s", path, p.line, p.msg)
	case p.key != "":
		msg = fmt.Sprintf("%s: key %s: %s", path, strconv.Quote(p.key), p.msg)
	default:
		msg = fmt.Sprintf("%s: %s", path, p.msg)
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w", msg, p.err)
	}
	return errors.New(msg)
}

// readTreeFile reads a file of the config tree through atomicfile: a regular file only,
// opened without blocking, at most MaxFileBytes.
func readTreeFile(path string) ([]byte, error) {
	data, err := atomicfile.ReadFile(path, atomicfile.ReadOptions{MaxBytes: MaxFileBytes})
	return data, treeFileError(path, err)
}

// openTreeDir opens the tree directory dir to read the files in it with one
// open each (see atomicfile.Dir), or returns nil when it cannot: each file is
// then read by its path, and that read says what is wrong.
func openTreeDir(dir string) *atomicfile.Dir {
	d, err := atomicfile.OpenDir(dir)
	if err != nil {
		return nil
	}
	return d
}

// readTreeFileIn is readTreeFile of the file name in dir, open as d (nil: by path).
func readTreeFileIn(d *atomicfile.Dir, dir, name string) ([]byte, error) {
	path := filepath.Join(dir, name)
	if d == nil {
		return readTreeFile(path)
	}
	data, err := d.ReadFile(name, atomicfile.ReadOptions{MaxBytes: MaxFileBytes})
	return data, treeFileError(path, err)
}

// treeFileError is err, of reading the tree file at path, said for the tree; nil stays nil.
func treeFileError(path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, atomicfile.ErrTooLarge):
		return fmt.Errorf("%s: larger than %d bytes (1 MiB), the most a tree file may hold: %w", path, MaxFileBytes, err)
	case errors.Is(err, atomicfile.ErrNotRegular):
		return fmt.Errorf("tree file: %w; want a regular file", err)
	default:
		return fmt.Errorf("read tree file: %w", err)
	}
}

// frame is one open object or array during checkJSON.
type frame struct {
	obj     bool
	path    string
	elem    reflect.Type            // type of every member (map, slice), nil when free-form
	fields  map[string]reflect.Type // struct members by their exact JSON key; nil otherwise
	keys    map[string]bool         // keys seen (objects)
	key     string                  // the key whose value comes next (objects)
	wantKey bool
	index   int // the next element (arrays)
}

// checkJSON walks data token by token against the shape of t (a pointer to the struct the
// file is decoded into). It returns the first problem, or nil.
func checkJSON(data []byte, t reflect.Type) *jsonProblem {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	lineAt := func(off int64) int {
		return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n"))
	}
	var stack []*frame
	done := false // the top-level value is complete
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !done {
				return &jsonProblem{line: lineAt(int64(len(data))), msg: "unexpected end of file"}
			}
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return &jsonProblem{line: lineAt(se.Offset), msg: se.Error()}
			}
			return &jsonProblem{line: lineAt(dec.InputOffset()), msg: err.Error()}
		}
		if done {
			return &jsonProblem{msg: "unexpected data after the JSON value"}
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				done = valueDone(stack)
				continue
			}
			key, _ := tok.(string)
			kpath := joinKey(top.path, key)
			if top.keys[key] {
				return &jsonProblem{key: kpath, msg: "appears twice in one object: keys must be unique (JSON readers disagree on which one wins)"}
			}
			top.keys[key] = true
			if top.fields != nil {
				if _, ok := top.fields[key]; !ok {
					return &jsonProblem{key: kpath, msg: unknownKey(key, top.fields)}
				}
			}
			top.key, top.wantKey = key, false
			continue
		}
		// A value, or the end of an array.
		vtype, vpath := t, ""
		if top != nil {
			vtype, vpath = top.child()
		}
		switch x := tok.(type) {
		case json.Delim:
			switch x {
			case ']':
				stack = stack[:len(stack)-1]
				done = valueDone(stack)
				continue
			case '{', '[':
				if len(stack) >= MaxDepth {
					return &jsonProblem{key: vpath, msg: fmt.Sprintf("nested deeper than %d levels of objects and arrays: a tree file may nest at most %d (Prosody options need a few)", MaxDepth, MaxDepth)}
				}
				stack = append(stack, openFrame(x == '{', vpath, vtype))
				continue
			}
		case json.Number:
			if msg := checkNumber(x); msg != "" {
				return &jsonProblem{key: vpath, msg: msg}
			}
		}
		done = valueDone(stack)
	}
}

// valueDone records, in the innermost open container, that one of its values is complete;
// it reports whether that was the top-level value.
func valueDone(stack []*frame) bool {
	if len(stack) == 0 {
		return true
	}
	top := stack[len(stack)-1]
	if top.obj {
		top.wantKey = true
	} else {
		top.index++
	}
	return false
}

// child is the type and key path of the next value inside f.
func (f *frame) child() (reflect.Type, string) {
	if f.obj {
		if f.fields != nil {
			return f.fields[f.key], joinKey(f.path, f.key)
		}
		return f.elem, joinKey(f.path, f.key)
	}
	return f.elem, fmt.Sprintf("%s[%d]", f.path, f.index)
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// openFrame starts an object or array whose Go type is t (nil: free-form).
func openFrame(obj bool, path string, t reflect.Type) *frame {
	f := &frame{obj: obj, path: path, wantKey: obj}
	if obj {
		f.keys = map[string]bool{}
	}
	f.fields, f.elem = members(obj, t)
	return f
}

// members is what an object (obj) or array of Go type t (nil: free-form) may hold, for
// checkJSON and quickCheck alike: the keys of a struct and their types (fields), or the
// type of every member of a map or slice (elem); both nil when the value is free-form.
func members(obj bool, t reflect.Type) (fields map[string]reflect.Type, elem reflect.Type) {
	t = shape(t)
	switch {
	case t == nil:
	case obj && t.Kind() == reflect.Struct:
		fields = fieldsOf(t)
	case obj && t.Kind() == reflect.Map:
		elem = t.Elem()
	case !obj && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		elem = t.Elem()
	}
	return fields, elem
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// shape returns the type whose keys checkJSON checks, or nil for a free-form value (an
// interface, json.RawMessage or another type that decodes itself).
func shape(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

// fieldCache holds the JSON keys of each struct type (fieldsOf), computed once per process.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf returns the JSON keys of struct t and their types; the map is shared: read only.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := map[string]reflect.Type{}
	structFields(t, f)
	fieldCache.Store(t, f)
	return f
}

// structFields adds the JSON keys of struct t (embedded structs included) to out.
func structFields(t reflect.Type, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			structFields(f.Type, out)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

// unknownKey explains a key the format does not have: a wrong case, or what is accepted.
func unknownKey(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		if strings.EqualFold(n, key) {
			return fmt.Sprintf("unknown field %s: keys are case-sensitive, write %s", strconv.Quote(key), strconv.Quote(n))
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return "unknown field " + strconv.Quote(key) + didYouMean(key, names) + "; accepted here: " + strings.Join(names, ", ")
}

// checkNumber refuses what would not reach Prosody exactly: an integer outside
// ±MaxExactInt, a number beyond the float64 range.
func checkNumber(n json.Number) string {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || i > MaxExactInt || i < -MaxExactInt {
			return fmt.Sprintf("integer %s is out of range: accepted are integers from -%d to %d (2^53-1), which every JSON and Lua reader holds exactly; write a larger value as a string where the option takes one", s, int64(MaxExactInt), int64(MaxExactInt))
		}
		return ""
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return fmt.Sprintf("number %s is out of the range of a 64-bit float", s)
	}
	return ""
}

// quickCheck is checkJSON's fast path, over the bytes rather than through
// json.Decoder's tokens (which allocate for every key and value, and cost
// twice the decode itself): true when data is one valid JSON value in which
// checkJSON finds nothing (no duplicate or unknown key, nesting at most
// MaxDepth, every number within range). It never explains: when it is not
// sure (a problem, or a key with an escape or a non-ASCII byte, which
// json.Decoder would unescape or replace before comparing) it answers false
// and checkJSON runs, so every message still comes from checkJSON.
func quickCheck(data []byte, t reflect.Type) bool {
	if !json.Valid(data) {
		return false
	}
	q := quickScan{data: data}
	return q.value(t, 1)
}

// quickScan walks JSON already known to be valid (json.Valid).
type quickScan struct {
	data []byte
	i    int
}

func (q *quickScan) ws() {
	for q.i < len(q.data) {
		switch q.data[q.i] {
		case ' ', '\t', '\n', '\r':
			q.i++
		default:
			return
		}
	}
}

// value checks the value at q.i, of Go type t (nil: free-form); depth is the
// nesting level an object or array there would have (the file's own: 1).
func (q *quickScan) value(t reflect.Type, depth int) bool {
	q.ws()
	switch c := q.data[q.i]; c {
	case '{', '[':
		if depth > MaxDepth {
			return false
		}
		if c == '{' {
			return q.object(t, depth)
		}
		return q.array(t, depth)
	case '"':
		q.str() // a value's escapes do not matter
	case 't', 'n':
		q.i += 4
	case 'f':
		q.i += 5
	default:
		start := q.i
		for q.i < len(q.data) && strings.IndexByte("+-.eE0123456789", q.data[q.i]) >= 0 {
			q.i++
		}
		return checkNumber(json.Number(q.data[start:q.i])) == ""
	}
	return true
}

// str skips the string at q.i and returns its raw bytes; ok is false when
// they hold an escape or a non-ASCII byte (the decoded key could differ).
func (q *quickScan) str() (raw []byte, ok bool) {
	q.i++ // "
	start, ok := q.i, true
	for {
		switch c := q.data[q.i]; {
		case c == '"':
			raw = q.data[start:q.i]
			q.i++
			return raw, ok
		case c == '\\':
			ok = false
			q.i += 2
		default:
			if c >= 0x80 {
				ok = false
			}
			q.i++
		}
	}
}

func (q *quickScan) object(t reflect.Type, depth int) bool {
	fields, elem := members(true, t)
	q.i++ // {
	q.ws()
	if q.data[q.i] == '}' {
		q.i++
		return true
	}
	var seen [][]byte
	var seenSet map[string]bool // past a few keys, instead of seen
	for {
		q.ws()
		key, ok := q.str()
		if !ok {
			return false
		}
		if seenSet != nil {
			if seenSet[string(key)] {
				return false
			}
			seenSet[string(key)] = true
		} else {
			for _, k := range seen {
				if bytes.Equal(k, key) {
					return false
				}
			}
			if seen = append(seen, key); len(seen) > 16 {
				seenSet = make(map[string]bool, 2*len(seen))
				for _, k := range seen {
					seenSet[string(k)] = true
				}
			}
		}
		child := elem
		if fields != nil {
			ft, known := fields[string(key)]
			if !known {
				return false
			}
			child = ft
		}
		q.ws()
		q.i++ // :
		if !q.value(child, depth+1) {
			return false
		}
		q.ws()
		if q.data[q.i] == ',' {
			q.i++
			continue
		}
		q.i++ // }
		return true
	}
}

func (q *quickScan) array(t reflect.Type, depth int) bool {
	_, elem := members(false, t)
	q.i++ // [
	q.ws()
	if q.data[q.i] == ']' {
		q.i++
		return true
	}
	for {
		if !q.value(elem, depth+1) {
			return false
		}
		q.ws()
		if q.data[q.i] == ',' {
			q.i++
			continue
		}
		q.i++ // ]
		return true
	}
}
