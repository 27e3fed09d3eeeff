package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseGoBench collects ns/op per benchmark name (the GOMAXPROCS suffix
// removed) from `go test -bench` output, one sample per -count.
func parseGoBench(out string) map[string]Sample {
	res := map[string]Sample{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if f[i+1] != "ns/op" {
				continue
			}
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			name := f[0]
			if j := strings.LastIndex(name, "-"); j > 0 {
				if _, err := strconv.Atoi(name[j+1:]); err == nil {
					name = name[:j]
				}
			}
			res[name] = append(res[name], time.Duration(v))
		}
	}
	return res
}

// benchLine formats one Go benchmark's median and spread.
func benchLine(name string, s Sample) string {
	return fmt.Sprintf("| %s | %s | %s | %d |", name, ms(s.Median()), ms(s.Max()), len(s))
}
