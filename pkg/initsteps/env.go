package initsteps

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// WithoutProsodyVars drops the PROSODY_* variables (secrets among them) from env.
func WithoutProsodyVars(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "PROSODY_") })
}

// ChildEnv is prosody's environment: the entrypoint's own without the
// PROSODY_* variables (secrets among them), plus what Prosody 13 reads:
// CREDENTIALS_DIRECTORY, NOTIFY_SOCKET when notifySocket is not "", and HOME
// when prosody runs as the entrypoint's own user. The socket-activation
// variables (LISTEN_*) the entrypoint may itself have been given describe
// its descriptors, not prosody's: they are dropped (the supervisor sets
// prosody's own per start).
func (s *State) ChildEnv(notifySocket string) []string {
	var out []string
	for _, kv := range s.Env {
		if strings.HasPrefix(kv, "PROSODY_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") ||
			strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") || strings.HasPrefix(kv, "HOME=") ||
			strings.HasPrefix(kv, "LISTEN_FDS=") || strings.HasPrefix(kv, "LISTEN_PID=") || strings.HasPrefix(kv, "LISTEN_FDNAMES=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "CREDENTIALS_DIRECTORY="+s.Paths.Credentials)
	if notifySocket != "" {
		out = append(out, "NOTIFY_SOCKET="+notifySocket)
	}
	if s.Cred == nil {
		out = append(out, "HOME="+s.Settings.DataDir)
	}
	return out
}

// PlanInputs maps the validated settings to the PFE engine's inputs.
func PlanInputs(st *settings.Settings) pfe.Inputs {
	in := pfe.Inputs{
		Profile:               st.Profile,
		Environment:           st.Environment,
		Domains:               st.Domains(),
		Admins:                st.Admins,
		Storage:               st.Storage,
		DBHost:                st.DBHost,
		DBPort:                st.DBPort,
		DBName:                st.DBName,
		DBUser:                st.DBUser,
		C2SPort:               st.C2SPort,
		S2SPort:               st.S2SPort,
		HTTPPort:              st.HTTPPort,
		HTTPSPort:             st.HTTPSPort,
		Interfaces:            st.Interfaces,
		DeploymentType:        st.DeploymentType,
		ScaleProfile:          st.ScaleProfile,
		ResourceLimits:        st.ResourceLimits,
		UploadSizeLimit:       st.HTTPUploadSizeLimit,
		FastTokenTTL:          st.FastTokenTTL,
		C2STimeout:            st.SASL2Timeout,
		RequireChannelBinding: st.RequireChannelBinding,
		TLSProfile:            st.TLSProfile,
		DataDir:               st.DataDir,
		ConfigDir:             st.ConfigDir,
		RuntimeDir:            st.RuntimeDir,
		CertsDir:              filepath.Join(st.RuntimeDir, "certs"),
		Legacy:                st.LegacyMode,
		Toggles:               st.Toggles,
		ExtraModules:          st.ExtraModules,

		HTTPInterfaces:          st.HTTPInterfaces,
		HTTPSInterfaces:         st.HTTPSInterfaces,
		TrustedProxies:          st.TrustedProxies,
		HTTPExternalURL:         st.HTTPExternalURL,
		UploadExternalURL:       st.HTTPUploadExternalURL,
		ConsiderWebsocketSecure: st.ConsiderWebsocketSecure,
		ConsiderBoshSecure:      st.ConsiderBoshSecure,
		OpenmetricsAllowIPs:     st.OpenmetricsAllowIPs,
		OpenmetricsAllowCIDR:    st.OpenmetricsAllowCIDR,
	}
	if st.PluginDir != "" {
		in.PluginPaths = []string{st.PluginDir}
	}
	if st.Source("PROSODY_ALLOW_REGISTRATION") != settings.SourceDefault {
		v := st.AllowRegistration
		in.AllowRegistration = &v
	}
	// LogLevel: the settings default it per environment; pass it only when the
	// operator chose it so the environment file's log_level applies otherwise.
	if st.Source("PROSODY_LOG_LEVEL") != settings.SourceDefault {
		in.LogLevel = st.LogLevel
	}
	var list []string
	for _, f := range st.Features {
		sign := "-"
		if f.Enable {
			sign = "+"
		}
		list = append(list, sign+f.Name)
	}
	in.FeatureList = strings.Join(list, ",")
	return in
}
