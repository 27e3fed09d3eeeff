package pfe

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NameRule says, for messages, which profile names and feature name segments CheckName
// accepts.
const NameRule = "a-z, 0-9, _ and -, starting with a letter or digit, at most 64 characters"

// maxNameLen is the longest profile name or feature name segment.
const maxNameLen = 64

// CheckName is the one rule for the names a person types and the tree uses as file names:
// profiles (PROSODY_PROFILE, `profiles create`, config/profiles/<name>/) and features
// (PROSODY_FEATURES, config/features/<group>/<name>.json). kind is "feature" for a feature
// name, which is <group>/<name>, or any other word ("profile") for a one-segment name; it
// also names the thing in the error. Each segment matches [a-z0-9][a-z0-9_-]* and is at
// most 64 characters. The error quotes the name and says what is accepted.
func CheckName(kind, name string) error {
	if kind == "feature" {
		group, base, ok := strings.Cut(name, "/")
		if !ok || strings.Contains(base, "/") {
			return fmt.Errorf("feature name %s is not <group>/<name>: write it as two names joined by one /, each of %s", strconv.Quote(name), NameRule)
		}
		if why := nameProblem(group); why != "" {
			return fmt.Errorf("feature name %s: group %s %s; accepted: %s", strconv.Quote(name), strconv.Quote(group), why, NameRule)
		}
		if why := nameProblem(base); why != "" {
			return fmt.Errorf("feature name %s: name %s %s; accepted: %s", strconv.Quote(name), strconv.Quote(base), why, NameRule)
		}
		return nil
	}
	if why := nameProblem(name); why != "" {
		return fmt.Errorf("%s name %s %s; accepted: %s", kind, strconv.Quote(name), why, NameRule)
	}
	return nil
}

// nameProblem says what is wrong with one name segment, or "".
func nameProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxNameLen:
		return fmt.Sprintf("is %d characters long", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_' || c == '-':
			if i == 0 {
				return fmt.Sprintf("starts with %q", string(c))
			}
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size <= 1 {
				return fmt.Sprintf("has the byte %#x, which is not UTF-8", c)
			}
			return fmt.Sprintf("has %s", strconv.QuoteRune(r))
		}
	}
	return ""
}

// Printable reports whether s is valid UTF-8 without control or other non-printing
// characters (what %q would escape), so it can be shown in a message as it is.
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// prose returns free text from a tree file (a reason, a hint) for a message: as it is when
// printable, quoted when it holds a control character, so it stays readable and safe.
func prose(s string) string {
	if Printable(s) {
		return s
	}
	return strconv.Quote(s)
}

// shown returns s for a message: as it is when it holds only letters, digits and _ . / -
// (a variable name, a plain path), quoted otherwise, so no terminal escape or line break
// from the input reaches a terminal or a log raw.
func shown(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '/' || c == '-') {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}
