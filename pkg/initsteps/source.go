package initsteps

import "github.com/prosody-pfe/prosody-pfe/pkg/settings"

// Source is where the config file Prosody runs comes from, as the stages that
// make it: the PFE render (the tree, planned and rendered) or the operator's
// own prosody.cfg.lua (PROSODY_CONFIG_FILE, copied and read with Prosody's
// parser). Everything after it — secrets, certificates, checks, supervision,
// health, reload — is the same for both; the stage lists below are the only
// places that ask which source is in use.
type Source struct {
	// Name is "pfe" or "file", as /status shows it.
	Name string
	// Plan fills in s.Plan (and, for a file, writes it to Paths.Config and
	// sets s.Rendered and s.Hash). Report is Plan at start-up (the legacy
	// migration report, once).
	Plan, Report Stage[*State]
	// Render writes Paths.Config from the plan; nil when Plan already did.
	Render *Stage[*State]
	// Migrate: the storage migration to PROSODY_STORAGE applies (only to
	// the storage the PFE render configures).
	Migrate bool
}

// RenderSource renders Prosody's config from the PFE tree.
var RenderSource = Source{Name: "pfe", Plan: Plan, Report: PlanAndReport, Render: &Render, Migrate: true}

// FileSource runs the operator's own prosody.cfg.lua (PROSODY_CONFIG_FILE).
var FileSource = Source{Name: "file", Plan: ConfigFile, Report: ConfigFile}

// SourceFor is the source the settings choose.
func SourceFor(st *settings.Settings) Source {
	if st.ConfigFile != "" {
		return FileSource
	}
	return RenderSource
}

// configStages are the stages that make a checked config with tls the
// certificate stage; start-up adds the report and the storage migration.
func (src Source) configStages(tls Stage[*State], startup bool) []Stage[*State] {
	plan := src.Plan
	if startup {
		plan = src.Report
	}
	out := []Stage[*State]{plan, Secrets, tls}
	if startup && src.Migrate {
		out = append(out, Migrate)
	}
	if src.Render != nil {
		out = append(out, *src.Render)
	}
	return append(out, Check)
}
