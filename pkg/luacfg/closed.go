package luacfg

import (
	"bytes"
	"slices"
)

// Closed reports whether a config file is closed: whether what Prosody makes
// of it depends on its bytes alone, apart from the credentials it names. It is
// closed when it is, token by token as Lua reads it, nothing but
//
//	name = value                     an option (value as below)
//	VirtualHost "host"               a section; also VirtualHost("host")
//	Component "addr" ["module"]      also Component("addr")("module")
//
// where a value is nil, true, false, a number (optionally negated), a string,
// Credential("name") with a plain name ([A-Za-z0-9_.-]), or a table of values
// with name, string or number keys. Anything else makes it open: a global
// read as a value (ENV_*, os, io), any other call (Include, RunScript,
// FileContents, FileLine(s), a function), an operator, a keyword. Such a file
// can read the environment or files, or run code, so its check verdict may
// change while its bytes do not.
//
// credentials are the names read with Credential(), sorted and without
// repeats; nil when the file is open. The rendered file of a plan without
// $lua values and legacy files is closed (a test keeps it so).
func Closed(src []byte) (credentials []string, closed bool) {
	p := &closedParser{lx: lexer{src: src}}
	p.next()
	for p.tok.kind != tokEOF {
		if !p.statement() {
			return nil, false
		}
	}
	if p.lx.bad {
		return nil, false
	}
	slices.Sort(p.creds)
	return slices.Compact(p.creds), true
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokName
	tokString // a short string: text holds the raw bytes between the quotes
	tokLongString
	tokNumber
	tokPunct // text is the single punctuation byte
	tokBad   // anything the subset does not know
)

type token struct {
	kind tokKind
	text []byte
}

// lexer splits Lua source into the tokens of the closed subset, skipping
// whitespace and comments exactly as Lua does.
type lexer struct {
	src []byte
	pos int
	bad bool
}

// longBracket returns the level of a long bracket opening at pos ("[[" is 0,
// "[==[" is 2), or -1 when there is none.
func (l *lexer) longBracket(pos int) int {
	if pos >= len(l.src) || l.src[pos] != '[' {
		return -1
	}
	n := 0
	for i := pos + 1; i < len(l.src); i++ {
		switch l.src[i] {
		case '=':
			n++
		case '[':
			return n
		default:
			return -1
		}
	}
	return -1
}

// skipLong moves past the long bracket of the given level opened at l.pos;
// false when it is never closed.
func (l *lexer) skipLong(level int) bool {
	closing := append(append([]byte{']'}, bytes.Repeat([]byte{'='}, level)...), ']')
	start := l.pos + level + 2
	i := bytes.Index(l.src[start:], closing)
	if i < 0 {
		return false
	}
	l.pos = start + i + len(closing)
	return true
}

func (l *lexer) next() token {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '-' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '-':
			l.pos += 2
			if level := l.longBracket(l.pos); level >= 0 {
				if !l.skipLong(level) {
					return token{kind: tokBad}
				}
				continue
			}
			for l.pos < len(l.src) && l.src[l.pos] != '\n' && l.src[l.pos] != '\r' {
				l.pos++
			}
		default:
			return l.token()
		}
	}
	return token{kind: tokEOF}
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameByte(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }

func (l *lexer) token() token {
	start := l.pos
	c := l.src[l.pos]
	switch {
	case isNameStart(c):
		for l.pos < len(l.src) && isNameByte(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokName, text: l.src[start:l.pos]}
	case c >= '0' && c <= '9' || c == '.' && l.pos+1 < len(l.src) && l.src[l.pos+1] >= '0' && l.src[l.pos+1] <= '9':
		// As Lua's read_numeral: digits, letters, dots, and a sign after an
		// exponent mark; luac rejects a malformed one.
		for l.pos < len(l.src) {
			b := l.src[l.pos]
			if (b == '+' || b == '-') && l.pos > start && bytes.IndexByte([]byte("eEpP"), l.src[l.pos-1]) >= 0 {
				l.pos++
				continue
			}
			if !isNameByte(b) && b != '.' {
				break
			}
			l.pos++
		}
		return token{kind: tokNumber, text: l.src[start:l.pos]}
	case c == '"' || c == '\'':
		l.pos++
		for l.pos < len(l.src) {
			switch l.src[l.pos] {
			case '\\':
				l.pos += 2
				continue
			case c:
				l.pos++
				return token{kind: tokString, text: l.src[start+1 : l.pos-1]}
			case '\n', '\r':
				return token{kind: tokBad} // unfinished string: luac rejects it
			}
			l.pos++
		}
		return token{kind: tokBad}
	case c == '[':
		if level := l.longBracket(l.pos); level >= 0 {
			if !l.skipLong(level) {
				return token{kind: tokBad}
			}
			return token{kind: tokLongString}
		}
	}
	if bytes.IndexByte([]byte("={}[](),;-"), c) >= 0 {
		l.pos++
		return token{kind: tokPunct, text: l.src[start:l.pos]}
	}
	return token{kind: tokBad}
}

type closedParser struct {
	lx    lexer
	tok   token
	creds []string
}

func (p *closedParser) next() {
	p.tok = p.lx.next()
	if p.tok.kind == tokBad {
		p.lx.bad = true
	}
}

func (p *closedParser) punct(c byte) bool {
	return p.tok.kind == tokPunct && p.tok.text[0] == c
}

func (p *closedParser) name(s string) bool {
	return p.tok.kind == tokName && string(p.tok.text) == s
}

// luaKeywords are Lua 5.4's reserved words: never an option name.
var luaKeywords = []string{"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto",
	"if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

func (p *closedParser) statement() bool {
	if p.punct(';') {
		p.next()
		return true
	}
	if p.tok.kind != tokName || slices.Contains(luaKeywords, string(p.tok.text)) {
		return false
	}
	switch string(p.tok.text) {
	case "VirtualHost":
		p.next()
		return p.stringArg(nil)
	case "Component":
		p.next()
		if !p.stringArg(nil) {
			return false
		}
		if p.tok.kind == tokString || p.punct('(') {
			return p.stringArg(nil) // the component's module
		}
		return true
	}
	p.next()
	if !p.punct('=') {
		return false
	}
	p.next()
	return p.value()
}

// stringArg reads one call argument that must be a short string: "s" or
// ("s"). When text is not nil it receives the string's raw bytes.
func (p *closedParser) stringArg(text *[]byte) bool {
	paren := p.punct('(')
	if paren {
		p.next()
	}
	if p.tok.kind != tokString {
		return false
	}
	if text != nil {
		*text = p.tok.text
	}
	p.next()
	if paren {
		if !p.punct(')') {
			return false
		}
		p.next()
	}
	return true
}

func (p *closedParser) value() bool {
	switch {
	case p.tok.kind == tokString || p.tok.kind == tokLongString || p.tok.kind == tokNumber:
		p.next()
		return true
	case p.name("nil") || p.name("true") || p.name("false"):
		p.next()
		return true
	case p.punct('-'):
		p.next()
		if p.tok.kind != tokNumber {
			return false
		}
		p.next()
		return true
	case p.name("Credential"):
		p.next()
		var text []byte
		if !p.stringArg(&text) || !plainCredential(text) {
			return false
		}
		p.creds = append(p.creds, string(text))
		return true
	case p.punct('{'):
		return p.table()
	}
	return false
}

func (p *closedParser) table() bool {
	p.next() // {
	for !p.punct('}') {
		switch {
		case p.punct('['):
			p.next()
			if p.tok.kind != tokString && p.tok.kind != tokNumber {
				return false
			}
			p.next()
			if !p.punct(']') {
				return false
			}
			p.next()
			if !p.punct('=') {
				return false
			}
			p.next()
		case p.tok.kind == tokName && !slices.Contains(luaKeywords, string(p.tok.text)) && p.lx.peekEquals():
			p.next()
			p.next() // =
		}
		if !p.value() {
			return false
		}
		if p.punct(',') || p.punct(';') {
			p.next()
			continue
		}
		if !p.punct('}') {
			return false
		}
	}
	p.next() // }
	return true
}

// peekEquals reports whether the next token is "=", without consuming it: in
// a table, `name = value` is a keyed field ("==" is two of them, and the
// value after the first then fails).
func (l *lexer) peekEquals() bool {
	save := *l
	t := l.next()
	*l = save
	return t.kind == tokPunct && t.text[0] == '='
}

// plainCredential reports whether a Credential() argument is a plain file
// name: no escape, no path separator, not "." or "..".
func plainCredential(name []byte) bool {
	if len(name) == 0 || string(name) == "." || string(name) == ".." {
		return false
	}
	for _, c := range name {
		if !isNameByte(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}
