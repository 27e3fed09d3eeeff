package initsteps

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed" // the Lua reader of an operator's config
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prosody-pfe/prosody-pfe/pkg/atomicfile"
	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
	"github.com/prosody-pfe/prosody-pfe/pkg/supervise"
)

// ConfigFile is FileSource's plan stage: it copies the operator's
// PROSODY_CONFIG_FILE to Paths.Config (root's, 0640, like a rendered file:
// Prosody reads the copy, so an edit reaches it only once checked) and reads
// the copy with Prosody's own parser, as the prosody user, into a plan:
// hosts, components, modules and options, for the certificates, secrets,
// checks, readiness and reload decisions that follow.
var ConfigFile = Stage[*State]{Name: "config-file", Run: stageConfigFile}

// ProsodySourceDir is where Debian's prosody package keeps Prosody's Lua
// (its CFG_SOURCEDIR); the config reader loads core.configmanager from it.
const ProsodySourceDir = "/usr/lib/prosody"

// maxConfigFile caps the operator's config file read by root.
const maxConfigFile = 1 << 20

//go:embed ownconfig.lua
var ownConfigReader []byte

// credentialMarker is the directory the reader pretends Credential() reads
// from: it never exists, and no secret is read while the file is parsed.
const credentialMarker = "/nonexistent/prosody-pfe-credential"

func stageConfigFile(ctx context.Context, s *State) error {
	st := s.Settings
	data, err := atomicfile.ReadFile(st.ConfigFile, atomicfile.ReadOptions{MaxBytes: maxConfigFile})
	if err != nil {
		return configErr(fmt.Errorf("PROSODY_CONFIG_FILE=%q: %w; mount your prosody.cfg.lua there (a regular file of at most 1 MiB), or unset PROSODY_CONFIG_FILE to render from the PFE tree", st.ConfigFile, err))
	}
	changed, err := s.WriteConfig(s.Paths.Config, data)
	if err != nil {
		return fmt.Errorf("write %s (PROSODY_RUNTIME_DIR): %w", s.Paths.Config, err)
	}
	plan, err := s.ownConfigPlan(ctx)
	if err != nil {
		var ce ConfigError
		if !errors.As(err, &ce) {
			return err
		}
		return configErr(fmt.Errorf("PROSODY_CONFIG_FILE=%q: %w", st.ConfigFile, ce.Err))
	}
	// The readiness probe asks PROSODY_DOMAIN's first host on PROSODY_C2S_PORT.
	if d := st.Domains()[0]; !slices.Contains(plan.Domains, d) {
		return configErr(fmt.Errorf("PROSODY_DOMAIN=%q is not a VirtualHost of PROSODY_CONFIG_FILE=%q (it has %s): the readiness probe asks for that host; set PROSODY_DOMAIN to one of them",
			d, st.ConfigFile, quoteList(plan.Domains)))
	}
	if ports := intList(pfe.GlobalOption(plan, "c2s_ports")); !slices.Contains(ports, st.C2SPort) {
		return configErr(fmt.Errorf("PROSODY_C2S_PORT=%d is not among the c2s_ports of PROSODY_CONFIG_FILE=%q (%v): the readiness probe connects there; set PROSODY_C2S_PORT to one of them",
			st.C2SPort, st.ConfigFile, ports))
	}
	sum := sha256.Sum256(data)
	s.Plan, s.Rendered, s.Hash = plan, data, hex.EncodeToString(sum[:])
	s.Log.Info("own config read", zap.String("file", st.ConfigFile), zap.String("path", s.Paths.Config),
		zap.Bool("changed", changed), zap.Strings("hosts", plan.Domains), zap.String("sha256", s.Hash[:16]))
	return nil
}

// ownConfigPlan reads Paths.Config, an operator's own config, with Prosody's
// parser as the prosody user (the reader is written to Paths.Staging) into a
// plan. A file Prosody's parser refuses, or one without a VirtualHost, is a
// configuration error (ConfigError); anything else is not.
func (s *State) ownConfigPlan(ctx context.Context) (*pfe.Plan, error) {
	reader := filepath.Join(s.Paths.Staging, "ownconfig.lua")
	if _, err := atomicfile.Write(reader, ownConfigReader, 0o644, s.rootUID(), s.rootUID()); err != nil {
		return nil, fmt.Errorf("write the config reader %s: %w", reader, err)
	}
	sections, err := s.readOwnConfig(ctx, reader)
	if err != nil {
		return nil, configErr(err)
	}
	plan, err := ownPlan(sections, s.Settings.Environment, s.Settings.TLSAllowSelfSigned)
	if err != nil {
		return nil, configErr(err)
	}
	return plan, nil
}

// readOwnConfig runs the reader on Paths.Config as the prosody user, with the
// environment Prosody gets (its ENV_ variables read the same values).
func (s *State) readOwnConfig(ctx context.Context, reader string) (map[string]map[string]any, error) {
	env := WithoutProsodyVars(os.Environ())
	lua, err := supervise.LookPath("lua5.4", env)
	if err != nil {
		return nil, fmt.Errorf("lua5.4 not found (install the Debian package lua5.4): %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := supervise.AuxCommand{Path: lua, Args: []string{reader, s.Paths.Config, credentialMarker, ProsodySourceDir}, Env: env, Cred: s.Cred}
	run := s.Exec
	if run == nil {
		run = func(ctx context.Context, cmd supervise.AuxCommand) ([]byte, int, error) {
			return supervise.Command(ctx, cmd, nil, nil)
		}
	}
	out, code, err := run(cctx, cmd)
	switch {
	case cctx.Err() != nil:
		return nil, fmt.Errorf("reading it with Prosody's parser took too long: %w", cctx.Err())
	case err != nil:
		return nil, fmt.Errorf("read it with Prosody's parser: %w", err)
	case code != 0:
		return nil, fmt.Errorf("prosody's parser refused it: %s", strings.TrimSpace(string(out)))
	}
	// The JSON is the last line; anything before it is the file's own output.
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	var dump struct {
		Sections map[string]map[string]any `json:"sections"`
	}
	dec := json.NewDecoder(bytes.NewReader(lines[len(lines)-1]))
	dec.UseNumber()
	if err := dec.Decode(&dump); err != nil {
		return nil, fmt.Errorf("read the parser's answer: %w", err)
	}
	return dump.Sections, nil
}

// ownPlan is the plan of an operator's config, from its sections as Prosody
// parsed them: "*" is the global section, a section with component_module a
// Component, any other a VirtualHost. Each line's reason is the file.
func ownPlan(sections map[string]map[string]any, environment string, selfSigned bool) (*pfe.Plan, error) {
	why := []string{"PROSODY_CONFIG_FILE"}
	section := func(opts map[string]any) pfe.SectionPlan {
		var sp pfe.SectionPlan
		for _, name := range slices.Sorted(maps.Keys(opts)) {
			v := ownValue(opts[name])
			switch name {
			case "modules_enabled":
				sp.Modules = ownModules(v, why)
			case "modules_disabled":
				sp.Disabled = ownModules(v, why)
			case "defined", "component_module", "load_global_modules":
			default:
				sp.Options = append(sp.Options, pfe.Option{Name: name, Value: v, Why: why})
			}
		}
		return sp
	}
	p := &pfe.Plan{Environment: environment, TLS: pfe.TLSPolicy{AllowSelfSigned: selfSigned, GenerateSelfSigned: selfSigned}}
	p.Global = section(sections["*"])
	for _, name := range slices.Sorted(maps.Keys(sections)) {
		opts := sections[name]
		if name == "*" {
			continue
		}
		if mod, ok := opts["component_module"].(string); ok {
			p.Components = append(p.Components, pfe.ComponentPlan{Name: name, Domain: name, Address: name, Type: mod, Why: why, SectionPlan: section(opts)})
			continue
		}
		if enabled, ok := opts["enabled"].(bool); ok && !enabled {
			continue
		}
		p.Domains = append(p.Domains, name)
		p.Hosts = append(p.Hosts, pfe.HostPlan{Domain: name, SectionPlan: section(opts)})
	}
	if len(p.Domains) == 0 {
		return nil, errors.New("it declares no VirtualHost: Prosody would serve nothing")
	}
	return p, nil
}

// ownValue turns a decoded JSON value into a plan value: whole numbers are
// int64, {"$credential": name} a pfe.Credential.
func ownValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ownValue(e)
		}
		return out
	case map[string]any:
		if name, ok := x["$credential"].(string); ok && len(x) == 1 {
			return pfe.Credential{Name: name}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ownValue(e)
		}
		return out
	}
	return v
}

func ownModules(v any, why []string) []pfe.Module {
	list, _ := v.([]any)
	var out []pfe.Module
	for _, e := range list {
		if name, ok := e.(string); ok {
			out = append(out, pfe.Module{Name: name, Why: why})
		}
	}
	return out
}

// intList reads a port list option; nil (unset) is Prosody's default c2s port.
func intList(v any) []int {
	if v == nil {
		return []int{5222}
	}
	var out []int
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	for _, e := range list {
		if n, ok := e.(int64); ok {
			out = append(out, int(n))
		}
	}
	return out
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
