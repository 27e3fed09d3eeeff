// Package pfe loads the Profile-Feature-Environment configuration tree (the format is
// described in docs/config-format.md) and resolves it, with plan inputs, into a Plan: the
// modules and options of every section of prosody.cfg.lua, each with the reason it is there.
//
// The package does no I/O after Load: Plan, Explain and Modules are pure functions of the
// loaded tree and the inputs, so they can be tested, diffed and printed without Prosody.
package pfe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Notes is the free-text "notes" field of every tree file: a string or a list of strings.
type Notes []string

// UnmarshalJSON accepts a JSON string or an array of strings.
func (n *Notes) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = Notes{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("notes must be a string or a list of strings: %w", err)
	}
	*n = list
	return nil
}

// Section is what a layer adds to one section of prosody.cfg.lua (the global section or
// every VirtualHost).
type Section struct {
	// Modules are added to modules_enabled.
	Modules []string `json:"modules,omitempty"`
	// RemoveModules are removed from modules_enabled again (added by an earlier layer).
	RemoveModules []string `json:"remove_modules,omitempty"`
	// DisableModules are added to modules_disabled (for auto-loaded modules).
	DisableModules []string `json:"disable_modules,omitempty"`
	// Settings are options; a later layer replaces an earlier one's value, null removes it.
	Settings map[string]json.RawMessage `json:"settings,omitempty"`
}

// ComponentSpec is what a layer adds to one component; a Component is rendered per domain.
type ComponentSpec struct {
	// Type is the Prosody component module ("muc", "http_file_share", ...).
	Type string `json:"type,omitempty"`
	// Subdomain gives the address "<subdomain>.<domain>".
	Subdomain string `json:"subdomain,omitempty"`
	// Modules are added to the component's modules_enabled.
	Modules []string `json:"modules,omitempty"`
	// Settings are options of the component; null removes one set earlier.
	Settings map[string]json.RawMessage `json:"settings,omitempty"`
}

// Layer is the shape shared by core files, profiles, features, feature parts and
// environments.
type Layer struct {
	Global     *Section                 `json:"global,omitempty"`
	Host       *Section                 `json:"host,omitempty"`
	Components map[string]ComponentSpec `json:"components,omitempty"`
	When       []When                   `json:"when,omitempty"`
}

// When is a conditional sub-layer: it applies when every key of If matches the plan input
// of that name. A value matches when it equals the input (strings, booleans, numbers); an
// array matches when any element does; null matches an input that is not set.
type When struct {
	If map[string]json.RawMessage `json:"if"`
	Layer
}

// Core is a file of config/core/.
type Core struct {
	Description string `json:"description,omitempty"`
	Notes       Notes  `json:"notes,omitempty"`
	Layer
}

// VHostTemplate is templates/vhost.json: the defaults every VirtualHost starts from (the
// design's vhost.template.lua). Its host section and `when` blocks are applied to every
// domain of PROSODY_DOMAIN, first, before the features, the profile and the environment,
// which may override them; a `when` block in it may hold only a host section. The custom
// directory's templates/vhost.json, when present, replaces the built-in one whole.
type VHostTemplate struct {
	Description string   `json:"description,omitempty"`
	Notes       Notes    `json:"notes,omitempty"`
	Host        *Section `json:"host,omitempty"`
	When        []When   `json:"when,omitempty"`
}

// Unsupported explains why a feature cannot be enabled and what to use instead.
type Unsupported struct {
	Reason  string `json:"reason"`
	Instead string `json:"instead"`
}

// Part is a sub-toggle inside a feature.
type Part struct {
	Description string   `json:"description,omitempty"`
	Notes       Notes    `json:"notes,omitempty"`
	Default     bool     `json:"default"`
	Toggles     []string `json:"toggles,omitempty"`
	// Requires names other parts of the same feature: while one of them is off, this
	// part is off too, whatever its default or toggle says (SASL2 nests Bind2 and FAST).
	Requires []string `json:"requires,omitempty"`
	// Disco is what a client sees of the part when it is on (added to the feature's).
	Disco *Disco `json:"disco,omitempty"`
	Layer
}

// Disco is what a client of the running server sees when a feature is on: the
// namespaces `entrypoint verify` looks for. Nil or empty means nothing a
// client can see proves the feature (verify then checks only its modules).
type Disco struct {
	// Server lists <feature var> values the domain's disco#info must advertise.
	Server []string `json:"server,omitempty"`
	// Account lists those the account's bare JID must advertise (PEP, MAM, push).
	Account []string `json:"account,omitempty"`
	// Components maps a component of the feature (a key of its "components") to
	// those that component's address must advertise.
	Components map[string][]string `json:"components,omitempty"`
	// Stream lists namespaces of c2s stream features, offered after STARTTLS
	// or after authentication (SASL2, stream management, CSI).
	Stream []string `json:"stream,omitempty"`
}

// Empty reports whether d names nothing to look for.
func (d *Disco) Empty() bool {
	if d == nil {
		return true
	}
	n := len(d.Server) + len(d.Account) + len(d.Stream)
	for _, v := range d.Components {
		n += len(v)
	}
	return n == 0
}

// merge adds o's namespaces to d (duplicates kept out) and returns d.
func (d *Disco) merge(o *Disco) *Disco {
	if o.Empty() {
		return d
	}
	if d == nil {
		d = &Disco{}
	}
	add := func(dst []string, src []string) []string {
		for _, s := range src {
			if !slices.Contains(dst, s) {
				dst = append(dst, s)
			}
		}
		return dst
	}
	d.Server = add(d.Server, o.Server)
	d.Account = add(d.Account, o.Account)
	d.Stream = add(d.Stream, o.Stream)
	for k, v := range o.Components {
		if d.Components == nil {
			d.Components = map[string][]string{}
		}
		d.Components[k] = add(d.Components[k], v)
	}
	return d
}

// Feature is a file config/features/<group>/<name>.json.
type Feature struct {
	Name             string          `json:"name"`
	Description      string          `json:"description,omitempty"`
	Notes            Notes           `json:"notes,omitempty"`
	XEPs             []string        `json:"xeps,omitempty"`
	Stability        string          `json:"stability,omitempty"`
	Unsupported      *Unsupported    `json:"unsupported,omitempty"`
	Requires         []string        `json:"requires,omitempty"`
	Conflicts        []string        `json:"conflicts,omitempty"`
	Toggles          []string        `json:"toggles,omitempty"`
	Packages         []string        `json:"packages,omitempty"`
	CommunityModules []string        `json:"community_modules,omitempty"`
	Parts            map[string]Part `json:"parts,omitempty"`
	// Disco is what a client sees of the feature; see Disco.
	Disco *Disco `json:"disco,omitempty"`
	Layer

	// Source is the file the feature was read from (not part of the file format).
	Source string `json:"-"`
}

// Profile is a file config/profiles/<name>/profile.json.
type Profile struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Notes       Notes           `json:"notes,omitempty"`
	Users       json.RawMessage `json:"users,omitempty"`
	Features    []string        `json:"features"`
	// OptionalFeatures are features the profile leaves off but that suit it: what an
	// operator can switch on (profiles show prints the toggle of each).
	OptionalFeatures []string `json:"optional_features,omitempty"`
	// ResourceRequirements is a sizing hint for the container.
	ResourceRequirements *Resources `json:"resource_requirements,omitempty"`
	Layer

	// Source is the file the profile was read from (not part of the file format).
	Source string `json:"-"`
}

// Resources is a profile's sizing hint: what the container needs for the users the
// profile is for. Free text, such as "256MB", "1 core", "5GB".
type Resources struct {
	Memory  string `json:"memory,omitempty"`
	CPU     string `json:"cpu,omitempty"`
	Storage string `json:"storage,omitempty"`
}

// TLSPolicy is the certificate policy of an environment.
type TLSPolicy struct {
	AllowSelfSigned    bool `json:"allow_self_signed"`
	GenerateSelfSigned bool `json:"generate_self_signed"`
}

// Environment is a file config/environments/<name>.json.
type Environment struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Notes       Notes     `json:"notes,omitempty"`
	LogLevel    string    `json:"log_level,omitempty"`
	TLS         TLSPolicy `json:"tls"`
	Layer

	// Source is the file the environment was read from (not part of the file format).
	Source string `json:"-"`
}

// Stability values of a feature.
const (
	StabilityStable       = "stable"
	StabilityBeta         = "beta"
	StabilityExperimental = "experimental"
	StabilityUnsupported  = "unsupported"
)
