//go:build !linux

package main

import (
	"fmt"
	"os"
)

// The soak reads /proc and drops privileges through the entrypoint: Linux only.
func main() {
	fmt.Fprintln(os.Stderr, "soak: Linux only (it reads /proc and runs Prosody as the prosody user)")
	os.Exit(2)
}
