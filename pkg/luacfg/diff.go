package luacfg

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Diff returns a unified-style line diff from old (named oldName) to new (named newName),
// computed as a longest common subsequence, with ctx lines of context around each change
// and "@@" between distant changes. It returns "" when the bytes are equal.
func Diff(oldName, newName string, old, new []byte, ctx int) string {
	if bytes.Equal(old, new) {
		return ""
	}
	var w strings.Builder
	fmt.Fprintf(&w, "--- %s\n+++ %s\n", oldName, newName)
	writeLineDiff(&w, splitLines(string(old)), splitLines(string(new)), ctx)
	return w.String()
}

func writeLineDiff(w io.Writer, a, b []string, ctx int) {
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i]})
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{'+', b[j]})
			j++
		default:
			ops = append(ops, op{'-', a[i]})
			i++
		}
	}
	last := -1
	for k, o := range ops {
		if o.kind == ' ' {
			continue
		}
		start := max(k-ctx, last+1)
		if start > last+1 {
			fmt.Fprintln(w, "@@")
		}
		for x := start; x <= k; x++ {
			fmt.Fprintf(w, "%c%s\n", ops[x].kind, ops[x].text)
		}
		last = k
		for x := k + 1; x < len(ops) && x <= k+ctx && ops[x].kind == ' '; x++ {
			fmt.Fprintf(w, " %s\n", ops[x].text)
			last = x
		}
	}
}
