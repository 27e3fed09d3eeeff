package initsteps

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/health"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
	"github.com/prosody-pfe/prosody-pfe/pkg/xmppcheck"
)

// ErrNoAdminShell is returned by Verify when the plan has no admin shell:
// the self-test makes its account and reads the loaded modules there.
var ErrNoAdminShell = errors.New("the admin shell is off: enable the admin/shell feature (PROSODY_FEATURES_ADMIN_SHELL=true) to run verify")

// Verify runs the client-level self-test (xmppcheck.Verify) against the
// server that st and plan describe (plan as ServedPlan gives it), and leaves
// its summary in the runtime directory for the running entrypoint's /status.
// roots verifies the server's certificate (nil: the system roots). With
// PROSODY_CONFIG_FILE the server runs the operator's config, which has no
// PFE features: the self-test checks the login and the modules that config
// enables, and says the per-feature checks do not apply.
func Verify(ctx context.Context, st *settings.Settings, plan *pfe.Plan, roots *x509.CertPool) (*xmppcheck.Report, error) {
	if !pfe.HasGlobalModule(plan, "admin_shell") {
		return nil, ErrNoAdminShell
	}
	s := &State{Settings: st, Plan: plan}
	rep, err := xmppcheck.Verify(ctx, xmppcheck.Config{
		AdminSocket: s.AdminSocket(), C2SAddr: st.C2SProbeAddr(), Plan: plan, RootCAs: roots,
		OwnConfig: SourceFor(st).Name == FileSource.Name,
	})
	sum := health.VerifySummary{At: time.Now().UTC()}
	if err != nil {
		sum.Error = err.Error()
	} else {
		sum = rep.Summary()
	}
	if werr := health.WriteVerifySummary(filepath.Join(st.RuntimeDir, health.VerifyFile), sum); werr != nil && err == nil {
		err = fmt.Errorf("verify ran, but its summary for /status was not kept (PROSODY_RUNTIME_DIR): %w", werr)
		return rep, err
	}
	return rep, err
}

// VerifyOnStart runs Verify once, after waitReady says Prosody is ready,
// when PROSODY_VERIFY_ON_START is set, and logs the result: one line per
// feature and domain that did not pass, and a summary. Problems are logged, not
// returned: the self-test must not stop the server.
func VerifyOnStart(ctx context.Context, s *State, waitReady func(context.Context) error) {
	if !s.Settings.VerifyOnStart {
		return
	}
	log := s.Log.Named("verify")
	if err := waitReady(ctx); err != nil {
		return
	}
	rep, err := Verify(ctx, s.Settings, s.Plan, nil)
	if rep == nil {
		if ctx.Err() == nil {
			log.Error("verify on start could not run", zap.Error(err))
		}
		return
	}
	for _, l := range rep.Lines {
		if l.Result == xmppcheck.Fail {
			log.Error("verify: feature failed", zap.String("domain", l.Domain), zap.String("feature", l.Feature), zap.Strings("evidence", l.Evidence))
		}
	}
	fields := []zap.Field{zap.Int("passed", rep.Passed), zap.Int("failed", rep.Failed), zap.Int("not_checkable", rep.NotCheckable),
		zap.Float64("duration_seconds", rep.DurationSeconds)}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	if rep.OK() {
		log.Info("verify passed", fields...)
	} else {
		log.Error("verify failed", append(fields, zap.Strings("failed_features", rep.FailedFeatures()))...)
	}
}

// ServedPlan is the plan of what the server started with the same
// environment runs: the config tree's plan, or, with PROSODY_CONFIG_FILE,
// the plan of the config file the running server reads (the checked copy in
// PROSODY_RUNTIME_DIR, not the operator's file, which may hold an edit the
// server refused), read with Prosody's parser as the prosody user. Errors are
// configuration errors (IsConfig), except a parser that cannot run.
func ServedPlan(ctx context.Context, st *settings.Settings) (*pfe.Plan, error) {
	if SourceFor(st).Name != FileSource.Name {
		_, plan, err := servedTree(st)
		return plan, err
	}
	live := LivePaths(st.RuntimeDir, "prosody.cfg.lua")
	if fi, err := os.Lstat(live.Config); err != nil || !fi.Mode().IsRegular() {
		return nil, configErr(fmt.Errorf("no running server's config at %s (PROSODY_RUNTIME_DIR): with PROSODY_CONFIG_FILE=%q, verify checks the config the server runs; start the server first", live.Config, st.ConfigFile))
	}
	cred, err := ChildCredential(st)
	if err != nil {
		return nil, err
	}
	s := &State{Env: os.Environ(), Settings: st, Paths: live, Cred: cred}
	plan, err := s.ownConfigPlan(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the running server's config %s (PROSODY_CONFIG_FILE=%q): %w", live.Config, st.ConfigFile, err)
	}
	return plan, nil
}

// servedTree loads the config tree the server of st runs (with
// PROSODY_LEGACY_DIR's module lists) and resolves its plan: the plan stage
// and ServedPlan share it, so verify asks about what the server serves.
// Errors are configuration errors.
func servedTree(st *settings.Settings) (*pfe.Tree, *pfe.Plan, error) {
	tree, err := pfe.Load(st.ConfigDir, st.CustomDir)
	if err != nil {
		return nil, nil, configErr(fmt.Errorf("load the config tree (PROSODY_CONFIG_DIR=%s, PROSODY_CUSTOM_DIR=%s): %w", st.ConfigDir, st.CustomDir, err))
	}
	if tree, err = tree.WithLegacyDir(st.LegacyDir); err != nil {
		return nil, nil, configErr(fmt.Errorf("PROSODY_LEGACY_DIR=%s: %w", st.LegacyDir, err))
	}
	plan, err := tree.Plan(PlanInputs(st))
	if err != nil {
		return nil, nil, configErr(err)
	}
	return tree, plan, nil
}
