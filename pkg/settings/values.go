package settings

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseBool reads a boolean in the forms people write: true/false, 1/0, yes/no, on/off, in any
// case, surrounding spaces ignored. The PFE engine uses it for PROSODY_FEATURES_* toggles.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

const boolAccepted = "true, false, 1, 0, yes, no, on, off"

// ParseDuration reads a Go duration ("90s", "1h30m") that may also use d (24h) and w (7 days)
// units: "21d", "2w", "1d12h". Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("negative duration")
	}
	s = strings.TrimPrefix(s, "+")
	var total time.Duration
	for s != "" {
		// one <number><unit> segment
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		j := i
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		num, unit := s[:i], s[i:j]
		if num == "" || unit == "" {
			return 0, errors.New("not a duration")
		}
		var d time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, errors.New("not a duration")
			}
			h := 24.0
			if unit == "w" {
				h = 7 * 24
			}
			v := f * h * float64(time.Hour)
			if v >= math.MaxInt64 {
				return 0, errors.New("duration too large")
			}
			d = time.Duration(v)
		default:
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, errors.New("not a duration")
			}
		}
		if total > math.MaxInt64-d {
			return 0, errors.New("duration too large")
		}
		total += d
		s = s[j:]
	}
	return total, nil
}

const durationAccepted = "a duration such as 500ms, 10s, 5m, 1h30m, 21d, 2w"

// sizeUnit returns the multiplier of a lowercase size unit.
func sizeUnit(unit string) (int64, bool) {
	switch unit {
	case "", "b":
		return 1, true
	case "k", "kb":
		return 1e3, true
	case "m", "mb":
		return 1e6, true
	case "g", "gb":
		return 1e9, true
	case "t", "tb":
		return 1e12, true
	case "kib":
		return 1 << 10, true
	case "mib":
		return 1 << 20, true
	case "gib":
		return 1 << 30, true
	case "tib":
		return 1 << 40, true
	}
	return 0, false
}

// ParseSize reads a byte size: a plain count of bytes ("1048576") or a number with a unit,
// decimal (KB, MB, GB, TB: powers of 1000) or binary (KiB, MiB, GiB, TiB: powers of 1024), in
// any case; "50MB", "10MiB", "1.5GB". The result is in bytes and must be positive.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnit(unit)
	if num == "" || !ok {
		return 0, errors.New("not a size")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errors.New("not a size")
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, errors.New("size too large")
	}
	if v < 1 {
		return 0, errors.New("size must be at least 1 byte")
	}
	return int64(v), nil
}

const sizeAccepted = "bytes (1048576) or a number with KB, MB, GB, TB, KiB, MiB, GiB, TiB (50MB, 10MiB)"

// splitList splits a comma-separated list, trimming spaces around items. An empty or blank
// string is an empty list; empty items ("a,,b", "a,") are reported by the second result.
func splitList(s string) (items []string, hasEmpty bool) {
	if strings.TrimSpace(s) == "" {
		return nil, false
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			hasEmpty = true
			continue
		}
		items = append(items, item)
	}
	return items, hasEmpty
}

// checkDomain validates an ASCII domain name (lowercase expected; callers lowercase first):
// labels of 1-63 letters, digits and hyphens, no leading or trailing hyphen, at most 253 bytes
// in total. Punycode labels (xn--) pass as ASCII. Non-ASCII input is refused: the standard
// library has no IDNA mapping, so the operator is asked for the xn-- form.
func checkDomain(d string) error {
	if d == "" {
		return errors.New("empty domain")
	}
	if !isASCII(d) {
		return errors.New("internationalized domain must be written in its ASCII xn-- form (punycode), e.g. xn--mnchen-3ya.de for münchen.de")
	}
	if len(d) > 253 {
		return fmt.Errorf("domain is %d bytes; at most 253", len(d))
	}
	if strings.HasSuffix(d, ".") {
		return errors.New("trailing dot; write the domain without it")
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return errors.New("empty label (two dots in a row or a leading dot)")
		}
		if len(label) > 63 {
			return fmt.Errorf("label %q is %d characters; at most 63", label, len(label))
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("label %q has %q; only letters, digits and hyphens", label, string(c))
			}
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// lowerASCII lowercases ASCII letters only, leaving any other byte as is.
func lowerASCII(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	return s
}

// RemoteAdminMarker, in front of an admin JID, says the JID is on a domain this server does not
// serve (an admin from elsewhere): "!alice@example.org".
const RemoteAdminMarker = "!"

// checkLocalpart validates a JID localpart (RFC 7622): 1-1023 bytes, no spaces, control or
// formatting characters and none of " & ' / : < > @.
func checkLocalpart(l string) error {
	if l == "" {
		return errors.New("empty localpart")
	}
	if len(l) > 1023 {
		return errors.New("localpart longer than 1023 bytes")
	}
	if !utf8.ValidString(l) {
		return errors.New("localpart is not valid UTF-8")
	}
	for _, r := range l {
		// strconv.IsPrint is false for C0 and C1 controls and for formatting characters
		// (bidi overrides), which RFC 7622's IdentifierClass disallows too.
		if r <= ' ' || !strconv.IsPrint(r) || strings.ContainsRune(`"&'/:<>@`, r) {
			return fmt.Errorf("localpart has %q; not allowed: spaces, control and formatting characters and \" & ' / : < > @", r)
		}
	}
	return nil
}

// parsePort reads a TCP port 1-65535.
func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("not a port number")
	}
	if n < 1 || n > 65535 {
		return 0, errors.New("port out of range")
	}
	return n, nil
}
