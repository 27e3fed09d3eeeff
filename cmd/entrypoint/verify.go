package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/exitcode"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
)

// runVerify is `entrypoint verify [--json] [--ca FILE] [--timeout D]`: the
// client-level self-test of the running server. 0 when nothing failed, 1 on
// any FAIL or when the test could not run, 78 for a bad environment.
func runVerify(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	caFile := fs.String("ca", "", "PEM file of the CA certificates that verify the server's certificate (default: the system's)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: entrypoint verify [--json] [--ca FILE] [--timeout 60s]")
		return exitcode.Usage
	}
	st, ok := loadSettings(env, stderr)
	if !ok {
		return exitcode.Config
	}
	plan, err := initsteps.ServedPlan(context.Background(), st)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: verify: %v\n", err)
		if initsteps.IsConfig(err) {
			return exitcode.Config
		}
		return exitcode.Failed
	}
	roots, err := initsteps.CertPool(*caFile)
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: verify: %v\n", err)
		return exitcode.Usage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rep, err := initsteps.Verify(ctx, st, plan, roots)
	if rep == nil {
		fmt.Fprintf(stderr, "entrypoint: verify: %v\n", err)
		return exitcode.Failed
	}
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: verify: %v\n", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.Print(stdout)
	}
	if err != nil || !rep.OK() {
		return exitcode.Failed
	}
	return exitcode.OK
}
