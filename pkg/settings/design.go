package settings

import "strings"

// The PFE design documents (the seeds the product grew from) name variables and values
// that Prosody 13 has no counterpart for, or that this product spells differently. An
// operator who copies them from the design gets either the real mechanism or a refusal
// that says what the design meant, why Prosody 13 has no such thing and what to use —
// never "unknown variable". docs/features.md lists them.

// DesignRefusal is a design name (or name=value) that is refused, and why.
type DesignRefusal struct {
	Meant   string // what the design meant by it
	Why     string // why Prosody 13 (or this product) has no such thing
	Instead string // what to use
}

// Message is the problem text: what the design meant, why it is not here, what to use.
func (d DesignRefusal) Message() string {
	return "the design's " + d.Meant + "; " + d.Why + "; use " + d.Instead + " instead"
}

// DesignRefusals lists the refused design names, keyed by variable name or "NAME=value".
func DesignRefusals() map[string]DesignRefusal {
	return map[string]DesignRefusal{
		"PROSODY_FAST_MAX_TOKENS": {
			Meant:   "sasl2_fast_max_tokens_per_user (a cap on the FAST tokens of one account)",
			Why:     "Prosody 13's mod_sasl2_fast has no such option (Prosody ignores unknown options): it keeps at most two tokens per client of an account (the current one and the one rotating in), keyed by the client's id, and drops them after sasl2_fast_token_ttl or a password change",
			Instead: "PROSODY_FAST_TOKEN_TTL to shorten how long a token lives (default 21d), or PROSODY_FEATURES_AUTH_FAST=false for no tokens",
		},
		"PROSODY_FEATURES_DEBUG": {
			Meant:   "development debug switch (debug_mode = true)",
			Why:     "Prosody 13 has no debug mode and no debug_mode option: debugging output is a log level",
			Instead: "PROSODY_LOG_LEVEL=debug (the default of the development environment; production lowers it to info)",
		},
		"PROSODY_VERSION":        composeOnly("image tag (image: prosody:${PROSODY_VERSION})", "PROSODY_PFE_IMAGE in Compose's .env (compose/base.yml)"),
		"PROSODY_MEMORY_LIMIT":   composeOnly("memory limit of the container", "PROSODY_MEMORY_LIMIT in Compose's .env with compose/production.yml (mem_limit), or resources.limits in Kubernetes"),
		"PROSODY_CPU_LIMIT":      composeOnly("CPU limit of the container", "PROSODY_CPU_LIMIT in Compose's .env with compose/production.yml (cpus), or resources.limits in Kubernetes"),
		"PROSODY_MEMORY_RESERVE": composeOnly("memory reservation of the container", "PROSODY_MEMORY_RESERVATION in Compose's .env with compose/production.yml, or resources.requests in Kubernetes"),
		"PROSODY_CPU_RESERVE":    composeOnly("CPU reservation of the container", "resources.requests in Kubernetes (Compose v1 has no CPU reservation outside swarm)"),
		"PROSODY_DEPLOYMENT_TYPE=systemd": {
			Meant:   "deployment as a systemd service on the host",
			Why:     "this entrypoint is the PID 1 of a container and supervises Prosody itself; on a host with systemd, Debian's prosody package and its prosody.service do that job and there is nothing for the entrypoint to adapt",
			Instead: "PROSODY_DEPLOYMENT_TYPE=docker for a container started by a systemd unit, or bare for the entrypoint binary run by a unit outside a container",
		},
	}
}

// composeOnly is the refusal of a variable the design's Compose file reads to build or
// size the container: the container's own environment has no use for it.
func composeOnly(meant, instead string) DesignRefusal {
	return DesignRefusal{
		Meant:   "Compose variable for the " + meant,
		Why:     "Compose reads it on the host to create the container; inside the container nothing can change it, so the entrypoint does not take it",
		Instead: instead + ", not the container's environment",
	}
}

// designValueAliases maps a design value to the value this product calls the same thing,
// keyed by variable name then design value.
func designValueAliases() map[string]map[string]string {
	return map[string]map[string]string{
		// The design's "manual" is a server started by hand, outside a container: bare.
		"PROSODY_DEPLOYMENT_TYPE": {"manual": "bare"},
	}
}

// designToggleAliases maps a design variable that is a feature toggle under another name
// to the toggle (seed 000 "Example Feature Configuration": PROSODY_AUTH_FAST_TOKENS,
// PROSODY_AUTH_DOWNGRADE_PROTECTION).
func designToggleAliases() map[string]string {
	return map[string]string{
		"PROSODY_AUTH_FAST_TOKENS":          "PROSODY_FEATURES_AUTH_FAST",
		"PROSODY_AUTH_DOWNGRADE_PROTECTION": "PROSODY_FEATURES_AUTH_DOWNGRADE_PROTECTION",
	}
}

// designValue returns val with a design alias replaced, or reports a refusal as a problem
// (and returns "" so no further check reports the same value again).
func (p *parser) designValue(name, val string) (string, bool) {
	if r, ok := DesignRefusals()[name+"="+strings.TrimSpace(val)]; ok {
		p.problem(name, val, r.Message(), "")
		return "", false
	}
	if to, ok := designValueAliases()[name][strings.TrimSpace(val)]; ok {
		return to, true
	}
	return val, true
}

// designProfiles are the profile names of the design, which its Compose file also passes
// as PROSODY_FEATURES (a build argument: FEATURES: ${PROSODY_FEATURES:-standard}).
func designProfiles() []string { return []string{"minimal", "standard", "enterprise", "development"} }

// designFeatureSet is the refusal of PROSODY_FEATURES=<profile name>.
func designFeatureSet(profile string) DesignRefusal {
	return DesignRefusal{
		Meant:   "PROSODY_FEATURES build argument (the feature set of profile " + profile + ", baked into the image)",
		Why:     "features are chosen when the container starts, by the profile and the toggles, not when the image is built, and PROSODY_FEATURES only lists changes to the profile's features",
		Instead: "PROSODY_PROFILE=" + profile + " (and PROSODY_FEATURES=+group/name,-group/name for changes)",
	}
}
