package tlscerts

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWarnings(t *testing.T) {
	ca := newCA(t)
	cases := []struct {
		name   string
		spec   leafSpec
		within time.Duration
		want   []string // prefixes of the expected warnings, in order
	}{
		{"full chain, far from expiry", leafSpec{}, 0, nil},
		{"leaf only", leafSpec{leafOnly: true}, 0, []string{"chain missing: "}},
		{"self-signed needs no chain", leafSpec{selfSigned: true}, 0, nil},
		{"expires in 10 days", leafSpec{notAfter: testNow.AddDate(0, 0, 10).Add(time.Hour)}, 0, []string{"expires soon: "}},
		{"threshold configurable", leafSpec{notAfter: testNow.AddDate(0, 0, 10).Add(time.Hour)}, 5 * 24 * time.Hour, nil},
		{"both", leafSpec{leafOnly: true, notAfter: testNow.AddDate(0, 0, 10).Add(time.Hour)}, 0, []string{"chain missing: ", "expires soon: "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.spec.names = []string{"example.com"}
			c, k := ca.issue(t, tc.spec)
			writeFile(t, dir, "example.com.crt", c, 0o644)
			writeFile(t, dir, "example.com.key", k, 0o600)
			opts := baseOptions(dir, "example.com")
			opts.WarnWithin = tc.within
			opts.AllowSelfSigned = tc.spec.selfSigned
			res, err := Prepare(opts)
			if err != nil {
				t.Fatal(err)
			}
			got := res.Hosts[0].Warnings
			if len(got) != len(tc.want) {
				t.Fatalf("warnings = %q, want prefixes %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) || !strings.Contains(got[i], filepath.Join(dir, "example.com.crt")) {
					t.Errorf("warning %q, want prefix %q and the file path", got[i], w)
				}
				if w == "expires soon: " && !strings.Contains(got[i], "in 10 days") {
					t.Errorf("warning %q does not say 10 days left", got[i])
				}
			}
		})
	}
}

func TestKeyFormatsValidate(t *testing.T) {
	ca := newCA(t)
	for _, kind := range []keyKind{rsaPKCS1, rsaPKCS8, ecdsaSEC1, ecdsaPKCS8, ed25519PKCS8} {
		t.Run(string(kind), func(t *testing.T) {
			dir := t.TempDir()
			c, k := ca.issue(t, leafSpec{names: []string{"example.com"}, key: kind})
			crt := writeFile(t, dir, "x.crt", c, 0o644)
			key := writeFile(t, dir, "x.key", k, 0o600)
			if err := Validate(crt, key, "example.com", testNow); err != nil {
				t.Errorf("Validate: %v", err)
			}
			_, wrong := newKey(t, kind)
			writeFile(t, dir, "wrong.key", wrong, 0o600)
			err := Validate(crt, filepath.Join(dir, "wrong.key"), "example.com", testNow)
			var perr *Error
			if !errors.As(err, &perr) || !perr.Has(ReasonKeyMismatch) {
				t.Errorf("Validate with another %s key = %v, want key mismatch", kind, err)
			}
			if err := Validate(crt, key, "example.net", testNow); err == nil || !strings.Contains(err.Error(), string(ReasonNameMismatch)) {
				t.Errorf("Validate for another host = %v, want name mismatch", err)
			}
			if err := Validate(crt, key, "example.com", testNow.AddDate(2, 0, 0)); err == nil || !strings.Contains(err.Error(), string(ReasonExpired)) {
				t.Errorf("Validate two years later = %v, want expired", err)
			}
		})
	}
}

func TestMatchName(t *testing.T) {
	cases := []struct {
		pattern, host string
		ok, exact     bool
	}{
		{"example.com", "example.com", true, true},
		{"Example.COM.", "example.com", true, true},
		{"*.example.com", "conference.example.com", true, false},
		{"*.example.com", "example.com", false, false},
		{"*.example.com", "a.b.example.com", false, false},
		{"*.example.com", ".example.com", false, false},
		{"*.", "example.", false, false},
		{"example.com", "conference.example.com", false, false},
	}
	for _, tc := range cases {
		ok, exact := matchName(tc.pattern, tc.host)
		if ok != tc.ok || exact != tc.exact {
			t.Errorf("matchName(%q, %q) = %v, %v; want %v, %v", tc.pattern, tc.host, ok, exact, tc.ok, tc.exact)
		}
	}
}

func TestValidProfile(t *testing.T) {
	for s, want := range map[string]bool{"modern": true, "intermediate": true, "old": true,
		"": false, "Modern": false, "legacy": false, "strict": false} {
		if got := ValidProfile(s); got != want {
			t.Errorf("ValidProfile(%q) = %v, want %v", s, got, want)
		}
	}
}
