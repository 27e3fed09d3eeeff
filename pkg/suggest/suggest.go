// Package suggest finds the name someone probably meant: the "did you mean"
// of every error about an unknown variable, feature, profile or module.
package suggest

import "strings"

// Closest returns the candidate nearest to name by edit distance
// (case-insensitive), or "" when none is close enough to be a plausible typo:
// the distance must be at most a third of the longer name's length, and 1 edit
// is always allowed. Ties go to the earlier candidate.
func Closest(name string, candidates []string) string {
	best, bestD := "", -1
	un := strings.ToUpper(name)
	for _, c := range candidates {
		limit := max(1, max(len(name), len(c))/3)
		if abs(len(name)-len(c)) > limit {
			continue // the distance is at least the length difference: not a typo
		}
		d := distance(un, strings.ToUpper(c))
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

// distance is the optimal string alignment distance between a and b in bytes
// (names are ASCII): insertions, deletions, substitutions and swaps of two
// adjacent characters ("tow" for "two") each count one edit.
func distance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}
