package settings

import (
	"strconv"
	"strings"
)

// Problem is one thing wrong with the environment.
type Problem struct {
	Var      string // the variable, e.g. PROSODY_STORAGE
	Value    string // the value as given; "<redacted>" for secrets; "" when not shown
	Msg      string // what is wrong
	Accepted string // what would be accepted; may be empty
}

// String renders the problem on one line, e.g.
// `PROSODY_STORAGE="mysql": not a storage backend; accepted: internal, sqlite, postgres`.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Var)
	if p.Value != "" {
		b.WriteByte('=')
		b.WriteString(strconv.Quote(p.Value))
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	if p.Accepted != "" {
		b.WriteString("; accepted: ")
		b.WriteString(p.Accepted)
	}
	return b.String()
}

// Problems is the error Load returns: every problem found, in the order found (secret files
// and deprecated names, then unknown names, then values in table order). Use errors.As with a
// *Problems target to get the list. It is never empty.
type Problems struct {
	List []Problem
}

// Error prints one problem per line.
func (p *Problems) Error() string {
	lines := make([]string, len(p.List))
	for i, pr := range p.List {
		lines[i] = pr.String()
	}
	return strings.Join(lines, "\n")
}

// Warning is something accepted that the operator should change (a deprecated name, a risky
// value for the environment).
type Warning struct {
	Var string
	Msg string
}

// String renders the warning on one line.
func (w Warning) String() string { return w.Var + ": " + w.Msg }

// Suggest returns the candidate nearest to name by Levenshtein distance (case-insensitive), or ""
// when none is close enough to be a plausible typo: the distance must be at most a third of the
// longer name's length, and at least 1 edit is always allowed. Ties go to the earlier candidate.
func Suggest(name string, candidates []string) string {
	best, bestD := "", -1
	un := strings.ToUpper(name)
	for _, c := range candidates {
		limit := max(1, max(len(name), len(c))/3)
		if abs(len(name)-len(c)) > limit {
			continue // the distance is at least the length difference: not a typo, skip the work
		}
		d := levenshtein(un, strings.ToUpper(c))
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// levenshtein is the edit distance between a and b in bytes (names are ASCII).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
