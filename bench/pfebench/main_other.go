//go:build !linux

package main

import (
	"fmt"
	"os"
)

// The benchmarks need Linux: /proc, process credentials and Prosody.
func main() {
	fmt.Fprintln(os.Stderr, "pfebench: Linux only")
	os.Exit(1)
}
