package listeners

import (
	"slices"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

func plan(modules []string, disabled []string, opts map[string]any) *pfe.Plan {
	p := &pfe.Plan{}
	for _, m := range modules {
		p.Global.Modules = append(p.Global.Modules, pfe.Module{Name: m})
	}
	for _, m := range disabled {
		p.Global.Disabled = append(p.Global.Disabled, pfe.Module{Name: m})
	}
	for k, v := range opts {
		p.Global.Options = append(p.Global.Options, pfe.Option{Name: k, Value: v})
	}
	return p
}

// Plan follows portmanager's rules for which interface and port each service
// listens on: what Prosody would bind, the entrypoint holds.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *pfe.Plan
		want []string
	}{
		{"defaults: every address, IPv4 and IPv6", plan(nil, nil, map[string]any{"c2s_ports": []any{int64(5222)}, "s2s_ports": []any{int64(5269)}}),
			[]string{"c2s *:5222", "c2s :::5222", "s2s *:5269", "s2s :::5269"}},
		{"interfaces option", plan(nil, nil, map[string]any{"c2s_ports": []any{int64(15222)}, "interfaces": []any{"127.0.0.1"}}),
			[]string{"c2s 127.0.0.1:15222", "s2s 127.0.0.1:5269"}},
		{"service interfaces beat interfaces", plan(nil, nil, map[string]any{"interfaces": []any{"127.0.0.1"}, "s2s_interfaces": "::1"}),
			[]string{"c2s 127.0.0.1:5222", "s2s ::1:5269"}},
		{"http is private: local interfaces, not interfaces", plan([]string{"http"}, nil, map[string]any{"interfaces": []any{"*"}, "http_ports": []any{int64(5280)}, "https_ports": []any{int64(5281)}}),
			[]string{"c2s *:5222", "s2s *:5269", "http 127.0.0.1:5280", "http ::1:5280", "https *:5281"}},
		{"no http without mod_http", plan(nil, nil, map[string]any{"interfaces": "*"}),
			[]string{"c2s *:5222", "s2s *:5269"}},
		{"direct TLS only when its ports are set", plan(nil, nil, map[string]any{"interfaces": "*", "c2s_direct_tls_ports": []any{int64(5223)}}),
			[]string{"c2s *:5222", "c2s_direct_tls *:5223", "s2s *:5269"}},
		{"use_ipv6 false", plan(nil, nil, map[string]any{"use_ipv6": false}),
			[]string{"c2s *:5222", "s2s *:5269"}},
		{"disabled s2s", plan(nil, []string{"s2s"}, map[string]any{"interfaces": "*"}),
			[]string{"c2s *:5222"}},
		{"non-canonical interfaces are left to Prosody", plan(nil, nil, map[string]any{"interfaces": []any{"0:0::1", "::ffff:10.0.0.1", "10.0.0.1"}}),
			[]string{"c2s 10.0.0.1:5222", "s2s 10.0.0.1:5269"}},
		{"numeric strings, one socket per interface and port", plan(nil, nil, map[string]any{"interfaces": "*", "c2s_ports": []any{"5222", int64(5222), "x"}}),
			[]string{"c2s *:5222", "s2s *:5269"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range Plan(tc.p) {
				got = append(got, s.Service+" "+s.Key())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Plan = %q\nwant   %q", got, tc.want)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	specs := []Spec{{"c2s", "*", 5222}, {"c2s", "::", 5222}, {"s2s", "*", 5269}}
	want := []string{"LISTEN_FDS=3", "LISTEN_FDNAMES=c2s:c2s:s2s"}
	if got := Env(specs); !slices.Equal(got, want) {
		t.Errorf("Env = %q, want %q", got, want)
	}
	if got := Env(nil); got != nil {
		t.Errorf("Env(nil) = %q, want nil", got)
	}
}
