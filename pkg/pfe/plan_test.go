package pfe_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/pkg/pfe"
)

func loadTestTree(t testing.TB) *pfe.Tree {
	t.Helper()
	tree, err := pfe.Load("testdata/tree", "")
	if err != nil {
		t.Fatalf("load testdata/tree: %v", err)
	}
	return tree
}

func baseInputs(profile, env string) pfe.Inputs {
	return pfe.Inputs{
		Profile: profile, Environment: env, Domains: []string{"example.com", "example.org"},
		Admins: []string{"admin@example.com"}, Storage: "internal", C2SPort: 5222, S2SPort: 5269,
		DataDir: "/var/lib/prosody", CertsDir: "/etc/prosody/certs", FastTokenTTL: time.Hour,
	}
}

func featureNames(p *pfe.Plan) []string {
	var names []string
	for _, f := range p.Features {
		names = append(names, f.Name)
	}
	return names
}

func moduleNames(sp pfe.SectionPlan) []string {
	var names []string
	for _, m := range sp.Modules {
		names = append(names, m.Name)
	}
	return names
}

func option(sp pfe.SectionPlan, name string) (pfe.Option, bool) {
	for _, o := range sp.Options {
		if o.Name == name {
			return o, true
		}
	}
	return pfe.Option{}, false
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPlanResolver(t *testing.T) {
	tree := loadTestTree(t)
	tests := []struct {
		name     string
		profile  string
		env      string
		edit     func(in *pfe.Inputs)
		features []string // exact, in order
		modsIn   []string // global modules that must be present
		modsOut  []string // global modules that must be absent
		errHas   []string // every substring must be in the error
	}{
		{
			name: "profile features with requires closed, dependency order then name", profile: "full", env: "production",
			features: []string{"messaging/core", "collaboration/muc", "messaging/archive", "mobile/csi", "mobile/push", "web/tuning"},
			modsIn:   []string{"mam", "smacks", "cloud_notify", "csi_simple", "roster"},
			modsOut:  []string{"version", "cloud_notify_extensions"},
		},
		{
			name: "seed toggle disables a profile feature", profile: "full", env: "production",
			edit:     func(in *pfe.Inputs) { in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH": "false"} },
			features: []string{"messaging/core", "collaboration/muc", "messaging/archive", "mobile/csi", "web/tuning"},
			modsOut:  []string{"cloud_notify"},
		},
		{
			name: "generic toggle enables a feature", profile: "small", env: "production",
			edit:     func(in *pfe.Inputs) { in.Toggles = map[string]string{"PROSODY_FEATURES_MOBILE_BATTERY_SAVER": "true"} },
			features: []string{"messaging/core", "mobile/battery-saver"},
			modsIn:   []string{"csi_battery_saver"},
		},
		{
			name: "list form enables and requires pull in dependencies", profile: "small", env: "production",
			edit:     func(in *pfe.Inputs) { in.FeatureList = "+messaging/archive, collaboration/muc" },
			features: []string{"messaging/core", "collaboration/muc", "messaging/archive"},
			modsIn:   []string{"mam"},
		},
		{
			name: "part toggle switches a default-off part on", profile: "full", env: "production",
			edit:   func(in *pfe.Inputs) { in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH_EXTENSIONS": "TRUE"} },
			modsIn: []string{"cloud_notify", "cloud_notify_extensions"},
		},
		{
			name: "extra modules are added last", profile: "small", env: "production",
			edit:   func(in *pfe.Inputs) { in.ExtraModules = []string{"motd"} },
			modsIn: []string{"motd"},
		},
		{
			name: "conflict names both sides and where each came from", profile: "full", env: "production",
			edit:   func(in *pfe.Inputs) { in.Toggles = map[string]string{"PROSODY_FEATURES_MOBILE_BATTERY_SAVER": "true"} },
			errHas: []string{"mobile/battery-saver (toggle PROSODY_FEATURES_MOBILE_BATTERY_SAVER=true)", "mobile/csi (profile full)"},
		},
		{
			name: "disabling a required feature is an error naming both", profile: "small", env: "production",
			edit:   func(in *pfe.Inputs) { in.FeatureList = "+collaboration/muc,-messaging/core" },
			errHas: []string{"collaboration/muc (PROSODY_FEATURES +collaboration/muc) requires messaging/core", "PROSODY_FEATURES -messaging/core"},
		},
		{
			name: "unknown toggle gets did-you-mean", profile: "small", env: "production",
			edit:   func(in *pfe.Inputs) { in.Toggles = map[string]string{"PROSODY_FEATURES_PUHS": "true"} },
			errHas: []string{"PROSODY_FEATURES_PUHS", "did you mean PROSODY_FEATURES_PUSH?"},
		},
		{
			name: "unknown list entry gets did-you-mean", profile: "small", env: "production",
			edit:   func(in *pfe.Inputs) { in.FeatureList = "+mobile/psuh" },
			errHas: []string{`"+mobile/psuh"`, "did you mean mobile/push?"},
		},
		{
			name: "toggle value must be true or false", profile: "small", env: "production",
			edit:   func(in *pfe.Inputs) { in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH": "yes"} },
			errHas: []string{`PROSODY_FEATURES_PUSH="yes"`, "true and false"},
		},
		{
			name: "toggle and list that contradict", profile: "small", env: "production",
			edit: func(in *pfe.Inputs) {
				in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH": "true"}
				in.FeatureList = "-mobile/push"
			},
			errHas: []string{"PROSODY_FEATURES -mobile/push contradicts toggle PROSODY_FEATURES_PUSH=true"},
		},
		{
			name: "unsupported feature explains why and what instead", profile: "small", env: "production",
			edit:   func(in *pfe.Inputs) { in.FeatureList = "+performance/clustering" },
			errHas: []string{"performance/clustering cannot be enabled", "single process", "instead: run one server per domain"},
		},
		{
			name: "unknown profile and environment", profile: "smal", env: "prod",
			errHas: []string{`profile "smal" does not exist (did you mean small?)`, `environment "prod" does not exist`},
		},
		{
			name: "no domains", profile: "small", env: "production",
			edit:   func(in *pfe.Inputs) { in.Domains = nil },
			errHas: []string{"no domains"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInputs(tc.profile, tc.env)
			if tc.edit != nil {
				tc.edit(&in)
			}
			p, err := tree.Plan(in)
			if len(tc.errHas) > 0 {
				if err == nil {
					t.Fatalf("Plan succeeded, want an error containing %q", tc.errHas)
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if tc.features != nil && !reflect.DeepEqual(featureNames(p), tc.features) {
				t.Errorf("features = %q, want %q", featureNames(p), tc.features)
			}
			mods := moduleNames(p.Global)
			for _, m := range tc.modsIn {
				if !has(mods, m) {
					t.Errorf("global modules %q lack %q", mods, m)
				}
			}
			for _, m := range tc.modsOut {
				if has(mods, m) {
					t.Errorf("global modules %q contain %q", mods, m)
				}
			}
		})
	}
}

func TestPlanEnvironmentLastAndWhy(t *testing.T) {
	tree := loadTestTree(t)
	p, err := tree.Plan(baseInputs("full", "production"))
	if err != nil {
		t.Fatal(err)
	}
	o, ok := option(p.Global, "archive_expires_after")
	if !ok || o.Value != "1y" {
		t.Fatalf("archive_expires_after = %#v, want \"1y\" from the environment", o.Value)
	}
	// The feature sets its default, the profile tunes it, the environment has the last word.
	want := []string{"feature messaging/archive (profile full)", "profile full", "environment production"}
	if !reflect.DeepEqual(o.Why, want) {
		t.Errorf("why = %q, want %q", o.Why, want)
	}
	core := p.Features[0]
	if core.Name != "messaging/core" || !strings.HasPrefix(core.Why[0], "required by ") {
		t.Errorf("messaging/core why = %q, want required by ...", core.Why)
	}
	if p.LogLevel != "warn" {
		t.Errorf("log level = %q, want the environment's warn", p.LogLevel)
	}
	in := baseInputs("full", "production")
	in.LogLevel = "debug"
	if p2, _ := tree.Plan(in); p2.LogLevel != "debug" {
		t.Errorf("log level = %q, want the input debug over the environment", p2.LogLevel)
	}
}

func TestPlanSectionsAndComponents(t *testing.T) {
	tree := loadTestTree(t)
	p, err := tree.Plan(baseInputs("full", "development"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) != 2 || p.Hosts[0].Domain != "example.com" || p.Hosts[1].Domain != "example.org" {
		t.Fatalf("hosts = %+v, want example.com then example.org", p.Hosts)
	}
	if len(p.Hosts[0].Disabled) != 1 || p.Hosts[0].Disabled[0].Name != "offline" {
		t.Errorf("host disabled modules = %+v, want offline", p.Hosts[0].Disabled)
	}
	var addrs []string
	for _, c := range p.Components {
		addrs = append(addrs, c.Address+" "+c.Type)
	}
	if want := []string{"conference.example.com muc", "conference.example.org muc"}; !reflect.DeepEqual(addrs, want) {
		t.Errorf("components = %q, want %q", addrs, want)
	}
	if o, ok := option(p.Components[0].SectionPlan, "restrict_room_creation"); !ok || o.Value != "local" {
		t.Errorf("component option = %#v", o)
	}
	if _, ok := option(p.Global, "smacks_max_queue_size"); ok {
		t.Errorf("smacks_max_queue_size is set, but development sets it to null")
	}
	if o, _ := option(p.Global, "c2s_ports"); !reflect.DeepEqual(o.Value, []any{int64(5222)}) {
		t.Errorf("c2s_ports = %#v, want [5222] from the input", o.Value)
	}
	if _, ok := option(p.Global, "allow_registration"); ok {
		t.Errorf("allow_registration is set but the input is unset")
	}
}

func TestPlanWhenBlocks(t *testing.T) {
	tree := loadTestTree(t)
	for _, tc := range []struct {
		storage string
		want    any
	}{
		{"", "internal"}, {"internal", "internal"}, {"sqlite", "sql"}, {"postgres", "sql"},
	} {
		in := baseInputs("small", "production")
		in.Storage, in.DBHost, in.DBPort, in.DBName, in.DBUser = tc.storage, "db", 5432, "prosody", "prosody"
		p, err := tree.Plan(in)
		if err != nil {
			t.Fatalf("storage %q: %v", tc.storage, err)
		}
		o, _ := option(p.Global, "storage")
		if o.Value != tc.want {
			t.Errorf("storage %q: storage = %#v, want %#v", tc.storage, o.Value, tc.want)
		}
		if tc.storage != "postgres" {
			continue
		}
		sql, _ := option(p.Global, "sql")
		want := map[string]any{"driver": "PostgreSQL", "database": "prosody", "username": "prosody",
			"password": pfe.Credential{Name: "db_password"}, "host": "db", "port": int64(5432)}
		if !reflect.DeepEqual(sql.Value, want) {
			t.Errorf("sql = %#v, want %#v", sql.Value, want)
		}
		if sql.Why[0] != "core/database (when storage=postgres)" {
			t.Errorf("sql why = %q", sql.Why)
		}
	}
	in := baseInputs("small", "production")
	in.Storage = "postgres"
	if _, err := tree.Plan(in); err == nil || !strings.Contains(err.Error(), `$var "db_name" is not set`) {
		t.Errorf("postgres without db settings: err = %v, want $var db_name not set", err)
	}
}

func TestExplain(t *testing.T) {
	tree := loadTestTree(t)
	in := baseInputs("full", "development")
	in.Toggles = map[string]string{"PROSODY_FEATURES_PUSH": "false"}
	p, err := tree.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	find := func(name string, in bool) pfe.Explanation {
		t.Helper()
		for _, e := range p.Explain(name) {
			if e.In == in {
				return e
			}
		}
		t.Fatalf("Explain(%q) = %+v, want an entry with in=%t", name, p.Explain(name), in)
		return pfe.Explanation{}
	}
	if e := find("mod_mam", true); e.Kind != "module" || e.Section != "global" || e.Why[0] != "feature messaging/archive (profile full)" {
		t.Errorf("mam: %+v", e)
	}
	if e := find("cloud_notify", false); !strings.Contains(e.Why[0], "toggle PROSODY_FEATURES_PUSH=false") {
		t.Errorf("cloud_notify: %+v", e)
	}
	if e := find("smacks_max_queue_size", false); e.Kind != "option" || e.Why[len(e.Why)-1] != "set to null by environment development" {
		t.Errorf("smacks_max_queue_size: %+v", e)
	}
	if e := find("csi_battery_saver", false); !strings.Contains(e.Why[0], "PROSODY_FEATURES_MOBILE_BATTERY_SAVER=true") {
		t.Errorf("csi_battery_saver: %+v", e)
	}
	if e := find("muc", true); e.Kind != "component" {
		t.Errorf("muc: %+v", e)
	}
	if e := find("pidfile", false); e.Why[0] != "set to null by core/global" {
		t.Errorf("pidfile: %+v", e)
	}
	if got := p.Explain("no_such_thing"); len(got) != 0 {
		t.Errorf("Explain(unknown) = %+v, want nothing", got)
	}
}

func TestPlanIsPlainJSON(t *testing.T) {
	tree := loadTestTree(t)
	in := baseInputs("full", "production")
	in.Storage, in.DBHost, in.DBPort, in.DBName, in.DBUser = "postgres", "db", 5432, "prosody", "prosody"
	p, err := tree.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("marshal plan: %v", err)
	}
	if !strings.Contains(string(b), `{"$credential":"db_password"}`) {
		t.Errorf("plan JSON lacks the credential reference")
	}
	q, _ := tree.Plan(in)
	b2, _ := json.Marshal(q)
	if string(b) != string(b2) {
		t.Errorf("two plans of the same inputs differ")
	}
}

// A profile tunes the features it names: its setting wins over the feature's
// default (in the development environment, which leaves the option alone).
func TestProfileOverridesFeatureDefault(t *testing.T) {
	tree := loadTestTree(t)
	p, err := tree.Plan(baseInputs("full", "development"))
	if err != nil {
		t.Fatal(err)
	}
	o, ok := option(p.Global, "archive_expires_after")
	if !ok || len(o.Why) == 0 || o.Why[len(o.Why)-1] != "profile full" {
		t.Fatalf("archive_expires_after = %#v (why %q), want the profile's value", o.Value, o.Why)
	}
}
