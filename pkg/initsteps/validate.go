package initsteps

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/luacfg"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// ValidateResult is one profile × environment of Validate.
type ValidateResult struct {
	Profile     string        `json:"profile"`
	Environment string        `json:"environment"`
	OK          bool          `json:"ok"`
	Error       string        `json:"error,omitempty"`
	Warnings    []string      `json:"warnings,omitempty"`
	Missing     []pfe.Missing `json:"missing_modules,omitempty"`
}

// Validate plans, renders and checks (luac, prosodyctl check config, installed
// modules) every profile of t in every environment, or only profile when it
// is not "". in supplies every other plan input. The checkers get env without
// any PROSODY_* variable, as in the check stage, so no secret reaches them,
// and run as cred (prosody; nil: as the entrypoint), so Lua in the tree never
// runs as root: the rendered files are root's, readable by cred's group.
// The error is for a profile that does not exist or a temporary directory
// that cannot be made; a combination that fails is a result with OK false.
func Validate(ctx context.Context, t *pfe.Tree, in pfe.Inputs, profile string, env []string, cred *supervise.Credential) ([]ValidateResult, error) {
	profiles := t.Profiles()
	if profile != "" {
		if t.Profile(profile) == nil {
			return nil, fmt.Errorf("profile %q does not exist; profiles: %s", profile, strings.Join(profiles, ", "))
		}
		profiles = []string{profile}
	}
	tmp, err := os.MkdirTemp("", "pfe-validate-")
	if err != nil {
		return nil, fmt.Errorf("create a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	gid := -1
	if cred != nil {
		gid = int(cred.GID)
	}
	if err := atomicfile.MkdirOwned(tmp, 0o750, -1, gid); err != nil {
		return nil, err
	}
	opts := luacfg.CheckOptions{Env: WithoutProsodyVars(env), Cred: cred}
	var results []ValidateResult
	for _, prof := range profiles {
		for _, e := range t.Environments() {
			in.Profile, in.Environment = prof, e
			results = append(results, validateOne(ctx, t, in, filepath.Join(tmp, prof+"-"+e+".cfg.lua"), gid, opts))
		}
	}
	return results, nil
}

func validateOne(ctx context.Context, t *pfe.Tree, in pfe.Inputs, path string, gid int, opts luacfg.CheckOptions) ValidateResult {
	r := ValidateResult{Profile: in.Profile, Environment: in.Environment}
	p, err := t.Plan(in)
	if err == nil {
		var data []byte
		if data, err = luacfg.Render(p); err == nil {
			_, err = atomicfile.Write(path, data, 0o640, -1, gid)
		}
	}
	if err == nil {
		r.Warnings, err = luacfg.Check(ctx, path, opts)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Missing = pfe.MissingModules(p, pfe.ModuleDirs(p))
	r.OK = len(r.Missing) == 0
	return r
}

// WriteValidateResults prints results one line per combination, with the
// reasons of a failure and any warning indented below it.
func WriteValidateResults(w io.Writer, results []ValidateResult) {
	for _, r := range results {
		status := "ok  "
		if !r.OK {
			status = "FAIL"
		}
		fmt.Fprintf(w, "%s %s × %s\n", status, r.Profile, r.Environment)
		if r.Error != "" {
			fmt.Fprintf(w, "     %s\n", strings.ReplaceAll(r.Error, "\n", "\n     "))
		}
		for _, m := range r.Missing {
			fmt.Fprintf(w, "     missing module %s: %s\n", m.Module, m.Hint)
		}
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "     warning: %s\n", warn)
		}
	}
}
