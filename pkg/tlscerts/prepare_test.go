package tlscerts

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPrepareLayouts(t *testing.T) {
	ca := newCA(t)
	cases := []struct {
		name     string
		setup    func(t *testing.T, dir string)
		hosts    []string
		wantCert map[string]string // host -> cert path relative to dir
		wantKey  map[string]string
	}{
		{
			name: "prosody host.crt and host.key",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", k, 0o600)
			},
			hosts:    []string{"example.com"},
			wantCert: map[string]string{"example.com": "example.com.crt"},
			wantKey:  map[string]string{"example.com": "example.com.key"},
		},
		{
			name: "prosody host/fullchain.pem and privkey.pem",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com/fullchain.pem", c, 0o644)
				writeFile(t, dir, "example.com/privkey.pem", k, 0o600)
			},
			hosts:    []string{"example.com"},
			wantCert: map[string]string{"example.com": "example.com/fullchain.pem"},
			wantKey:  map[string]string{"example.com": "example.com/privkey.pem"},
		},
		{
			name: "prosody host.pem with certificate and key in one file",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com.pem", append(c, k...), 0o600)
			},
			hosts:    []string{"example.com"},
			wantCert: map[string]string{"example.com": "example.com.pem"},
			wantKey:  map[string]string{"example.com": "example.com.pem"},
		},
		{
			name: "lets encrypt live symlinks into archive, newest wins",
			setup: func(t *testing.T, dir string) {
				oldC, oldK := ca.issue(t, leafSpec{names: []string{"example.com"}, notAfter: testNow.AddDate(0, 1, 0)})
				newC, newK := ca.issue(t, leafSpec{names: []string{"example.com"}, notAfter: testNow.AddDate(0, 3, 0)})
				writeFile(t, dir, "archive/example.com/fullchain1.pem", oldC, 0o644)
				writeFile(t, dir, "archive/example.com/privkey1.pem", oldK, 0o600)
				writeFile(t, dir, "archive/example.com/fullchain2.pem", newC, 0o644)
				writeFile(t, dir, "archive/example.com/privkey2.pem", newK, 0o600)
				live := filepath.Join(dir, "live/example.com")
				if err := os.MkdirAll(live, 0o755); err != nil {
					t.Fatal(err)
				}
				for link, target := range map[string]string{"fullchain.pem": "fullchain2.pem", "privkey.pem": "privkey2.pem"} {
					if err := os.Symlink("../../archive/example.com/"+target, filepath.Join(live, link)); err != nil {
						t.Fatal(err)
					}
				}
			},
			hosts:    []string{"example.com"},
			wantCert: map[string]string{"example.com": "live/example.com/fullchain.pem"},
			wantKey:  map[string]string{"example.com": "live/example.com/privkey.pem"},
		},
		{
			name: "wildcard covers components one label deep, not the apex",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"*.example.com"}})
				writeFile(t, dir, "wild.crt", c, 0o644)
				writeFile(t, dir, "wild.key", k, 0o600)
				c, k = ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", k, 0o600)
			},
			hosts: []string{"example.com", "conference.example.com", "upload.example.com"},
			wantCert: map[string]string{"example.com": "example.com.crt",
				"conference.example.com": "wild.crt", "upload.example.com": "wild.crt"},
			wantKey: map[string]string{"example.com": "example.com.key",
				"conference.example.com": "wild.key", "upload.example.com": "wild.key"},
		},
		{
			name: "one multi-SAN certificate serves several hosts, whatever its file name",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"example.com", "conference.example.com", "example.org"}})
				writeFile(t, dir, "sub/dir/fullchain-all.pem", c, 0o644)
				writeFile(t, dir, "sub/dir/privkey-all.pem", k, 0o600)
			},
			hosts: []string{"example.com", "conference.example.com", "example.org"},
			wantCert: map[string]string{"example.com": "sub/dir/fullchain-all.pem",
				"conference.example.com": "sub/dir/fullchain-all.pem", "example.org": "sub/dir/fullchain-all.pem"},
			wantKey: map[string]string{"example.com": "sub/dir/privkey-all.pem",
				"conference.example.com": "sub/dir/privkey-all.pem", "example.org": "sub/dir/privkey-all.pem"},
		},
		{
			name: "certificate without SAN matches by common name",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{cn: "example.com"})
				writeFile(t, dir, "legacy.crt", c, 0o644)
				writeFile(t, dir, "legacy.key", k, 0o600)
			},
			hosts:    []string{"example.com"},
			wantCert: map[string]string{"example.com": "legacy.crt"},
			wantKey:  map[string]string{"example.com": "legacy.key"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			res, err := Prepare(baseOptions(dir, tc.hosts...))
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			for _, h := range tc.hosts {
				hc, ok := res.Host(h)
				if !ok {
					t.Fatalf("no result for %s", h)
				}
				if want := filepath.Join(dir, tc.wantCert[h]); hc.CertFile != want {
					t.Errorf("%s: CertFile = %s, want %s", h, hc.CertFile, want)
				}
				if want := filepath.Join(dir, tc.wantKey[h]); hc.KeyFile != want {
					t.Errorf("%s: KeyFile = %s, want %s", h, hc.KeyFile, want)
				}
				if hc.Source != SourceDiscovered || hc.SelfSigned {
					t.Errorf("%s: Source = %s, SelfSigned = %v; want discovered CA-issued", h, hc.Source, hc.SelfSigned)
				}
				if err := Validate(hc.CertFile, hc.KeyFile, h, testNow); err != nil {
					t.Errorf("%s: chosen pair does not validate: %v", h, err)
				}
				fp, err := Fingerprint(hc.CertFile)
				if err != nil || fp != hc.Fingerprint {
					t.Errorf("%s: Fingerprint = %s, %v; Result has %s", h, fp, err, hc.Fingerprint)
				}
			}
		})
	}
}

func TestPrepareLetsEncryptPicksNewestNotAfter(t *testing.T) {
	// The archive holds the old and new files, the live symlinks the new:
	// Prosody must get the newest certificate, through the live path that
	// certbot updates.
	ca := newCA(t)
	dir := t.TempDir()
	oldC, oldK := ca.issue(t, leafSpec{names: []string{"example.com"}, notAfter: testNow.AddDate(0, 1, 0)})
	newC, newK := ca.issue(t, leafSpec{names: []string{"example.com"}, notAfter: testNow.AddDate(0, 3, 0)})
	writeFile(t, dir, "archive/example.com/fullchain1.pem", oldC, 0o644)
	writeFile(t, dir, "archive/example.com/privkey1.pem", oldK, 0o600)
	writeFile(t, dir, "archive/example.com/fullchain2.pem", newC, 0o644)
	writeFile(t, dir, "archive/example.com/privkey2.pem", newK, 0o600)
	if err := os.MkdirAll(filepath.Join(dir, "live/example.com"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("../../archive/example.com/fullchain2.pem", filepath.Join(dir, "live/example.com/fullchain.pem"))
	os.Symlink("../../archive/example.com/privkey2.pem", filepath.Join(dir, "live/example.com/privkey.pem"))
	res, err := Prepare(baseOptions(dir, "example.com"))
	if err != nil {
		t.Fatal(err)
	}
	hc := res.Hosts[0]
	if !hc.NotAfter.Equal(testNow.AddDate(0, 3, 0)) {
		t.Errorf("NotAfter = %v, want the renewed certificate's %v", hc.NotAfter, testNow.AddDate(0, 3, 0))
	}
	want := []string{filepath.Join(dir, "live/example.com/fullchain.pem"), filepath.Join(dir, "live/example.com/privkey.pem")}
	if got := res.Files(); !slices.Equal(got, want) {
		t.Errorf("Files() = %v, want %v", got, want)
	}
}

func TestPrepareFailures(t *testing.T) {
	ca := newCA(t)
	cases := []struct {
		name     string
		setup    func(t *testing.T, dir string)
		host     string
		opts     func(o *Options)
		reason   Reason
		pathPart string // the reported path ends with this
		detail   string // the detail contains this
	}{
		{
			name: "key belongs to another certificate",
			setup: func(t *testing.T, dir string) {
				c, _ := ca.issue(t, leafSpec{names: []string{"example.com"}})
				_, other := ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", other, 0o600)
			},
			host: "example.com", reason: ReasonKeyMismatch, pathPart: "example.com.key", detail: "ECDSA",
		},
		{
			name: "key of another algorithm",
			setup: func(t *testing.T, dir string) {
				c, _ := ca.issue(t, leafSpec{names: []string{"example.com"}, key: ed25519PKCS8})
				_, other := newKey(t, ecdsaSEC1)
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", other, 0o600)
			},
			host: "example.com", reason: ReasonKeyMismatch, pathPart: "example.com.key", detail: "Ed25519",
		},
		{
			name: "certificate for another host under this host's name",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"other.org"}})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", k, 0o600)
			},
			host: "example.com", reason: ReasonNameMismatch, pathPart: "example.com.crt", detail: "other.org",
		},
		{
			name: "wildcard does not reach two labels down",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"*.example.com"}})
				writeFile(t, dir, "live/a.b.example.com/fullchain.pem", c, 0o644)
				writeFile(t, dir, "live/a.b.example.com/privkey.pem", k, 0o600)
			},
			host: "a.b.example.com", reason: ReasonNameMismatch, pathPart: "live/a.b.example.com/fullchain.pem", detail: "*.example.com",
		},
		{
			name: "component may not borrow its parent's certificate",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", k, 0o600)
			},
			host: "conference.example.com", reason: ReasonNoCertificate, detail: "cover",
		},
		{
			name: "expired",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"example.com"}, notBefore: testNow.AddDate(-1, 0, 0), notAfter: testNow.AddDate(0, 0, -2)})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", k, 0o600)
			},
			host: "example.com", reason: ReasonExpired, pathPart: "example.com.crt", detail: "2025-05-30",
		},
		{
			name: "not yet valid",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"example.com"}, notBefore: testNow.AddDate(0, 0, 3), notAfter: testNow.AddDate(1, 0, 0)})
				writeFile(t, dir, "example.com/fullchain.pem", c, 0o644)
				writeFile(t, dir, "example.com/privkey.pem", k, 0o600)
			},
			host: "example.com", reason: ReasonNotYetValid, pathPart: "example.com/fullchain.pem", detail: "2025-06-04",
		},
		{
			name: "key file missing",
			setup: func(t *testing.T, dir string) {
				c, _ := ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com.crt", c, 0o644)
			},
			host: "example.com", reason: ReasonKeyMissing, pathPart: "example.com.key",
		},
		{
			name: "certificate file is not a certificate",
			setup: func(t *testing.T, dir string) {
				writeFile(t, dir, "example.com.crt", []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), 0o644)
				writeFile(t, dir, "example.com.key", []byte("x"), 0o600)
			},
			host: "example.com", reason: ReasonBadCertificate, pathPart: "example.com.crt",
		},
		{
			name: "key file holds no key",
			setup: func(t *testing.T, dir string) {
				c, _ := ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", c, 0o600)
			},
			host: "example.com", reason: ReasonBadKey, pathPart: "example.com.key", detail: "no PEM private key",
		},
		{
			name: "encrypted key",
			setup: func(t *testing.T, dir string) {
				c, _ := ca.issue(t, leafSpec{names: []string{"example.com"}})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)
			},
			host: "example.com", reason: ReasonKeyEncrypted, pathPart: "example.com.key",
		},
		{
			name: "self-signed in production",
			setup: func(t *testing.T, dir string) {
				c, k := ca.issue(t, leafSpec{names: []string{"example.com"}, selfSigned: true})
				writeFile(t, dir, "example.com.crt", c, 0o644)
				writeFile(t, dir, "example.com.key", k, 0o600)
			},
			host: "example.com", reason: ReasonSelfSigned, pathPart: "example.com.crt",
		},
		{
			name:   "no certificate at all in production",
			setup:  func(t *testing.T, dir string) {},
			host:   "example.com",
			reason: ReasonNoCertificate,
		},
		{
			name:   "certificate directory missing in production",
			setup:  func(t *testing.T, dir string) { os.Remove(dir) },
			host:   "example.com",
			reason: ReasonNoCertificate, detail: "does not exist",
		},
		{
			name:   "host name that would escape a directory",
			setup:  func(t *testing.T, dir string) {},
			host:   "../etc",
			reason: ReasonBadHost,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			opts := baseOptions(dir, tc.host)
			if tc.opts != nil {
				tc.opts(&opts)
			}
			res, err := Prepare(opts)
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Prepare = %+v, %v; want *Error with %q", res, err, tc.reason)
			}
			if len(perr.Problems) != 1 {
				t.Fatalf("problems = %v, want one", perr.Problems)
			}
			p := perr.Problems[0]
			if p.Reason != tc.reason || p.Host != tc.host {
				t.Fatalf("problem = %+v, want reason %q for host %s", p, tc.reason, tc.host)
			}
			if tc.pathPart != "" && p.Path != filepath.Join(dir, tc.pathPart) {
				t.Errorf("path = %s, want %s", p.Path, filepath.Join(dir, tc.pathPart))
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to contain %q", p.Detail, tc.detail)
			}
			if p.Fix == "" {
				t.Errorf("problem %+v has no fix", p)
			}
			msg := err.Error()
			if !strings.Contains(msg, string(tc.reason)) || !strings.Contains(msg, "fix: ") || (p.Path != "" && !strings.Contains(msg, p.Path)) {
				t.Errorf("message %q lacks the reason, path or fix", msg)
			}
			if strings.Contains(msg, "PRIVATE KEY") {
				t.Errorf("message leaks key material: %q", msg)
			}
		})
	}
}

func TestPrepareReportsEveryHostAtOnce(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	c, _ := ca.issue(t, leafSpec{names: []string{"example.com"}})
	_, other := ca.issue(t, leafSpec{names: []string{"example.com"}})
	writeFile(t, dir, "example.com.crt", c, 0o644)
	writeFile(t, dir, "example.com.key", other, 0o600)
	c, k := ca.issue(t, leafSpec{names: []string{"example.org"}, notAfter: testNow.Add(-time.Hour)})
	writeFile(t, dir, "example.org.crt", c, 0o644)
	writeFile(t, dir, "example.org.key", k, 0o600)
	c, k = ca.issue(t, leafSpec{names: []string{"good.example"}})
	writeFile(t, dir, "good.example.crt", c, 0o644)
	writeFile(t, dir, "good.example.key", k, 0o600)

	_, err := Prepare(baseOptions(dir, "example.com", "good.example", "example.org", "missing.example"))
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("err = %v, want *Error", err)
	}
	got := map[string]Reason{}
	for _, p := range perr.Problems {
		got[p.Host] = p.Reason
	}
	want := map[string]Reason{"example.com": ReasonKeyMismatch, "example.org": ReasonExpired, "missing.example": ReasonNoCertificate}
	if len(got) != len(want) {
		t.Fatalf("problems = %v, want %v", got, want)
	}
	for h, r := range want {
		if got[h] != r {
			t.Errorf("%s: reason %q, want %q", h, got[h], r)
		}
	}
	if lines := strings.Count(err.Error(), "\n"); lines != 3 {
		t.Errorf("message has %d lines after the header, want 3:\n%s", lines, err)
	}
}

func TestPrepareValidCertificateWinsOverBrokenOne(t *testing.T) {
	// An expired leftover next to the renewed certificate must not block.
	ca := newCA(t)
	dir := t.TempDir()
	c, k := ca.issue(t, leafSpec{names: []string{"example.com"}, notAfter: testNow.Add(-time.Hour)})
	writeFile(t, dir, "old/example.com.crt", c, 0o644)
	writeFile(t, dir, "old/example.com.key", k, 0o600)
	c, k = ca.issue(t, leafSpec{names: []string{"*.com"}})
	writeFile(t, dir, "new/wild.crt", c, 0o644)
	writeFile(t, dir, "new/wild.key", k, 0o600)
	res, err := Prepare(baseOptions(dir, "example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Hosts[0].CertFile; got != filepath.Join(dir, "new/wild.crt") {
		t.Errorf("CertFile = %s, want the valid wildcard", got)
	}
}

func TestPrepareSkipsDotDirsAndDepthBeyondThree(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
	writeFile(t, dir, "..data/example.com.crt", c, 0o644) // Kubernetes' hidden secret dir
	writeFile(t, dir, "..data/example.com.key", k, 0o600)
	writeFile(t, dir, "a/b/c/example.com.crt", c, 0o644)
	writeFile(t, dir, "a/b/c/example.com.key", k, 0o600)
	_, err := Prepare(baseOptions(dir, "example.com"))
	var perr *Error
	if !errors.As(err, &perr) || !perr.Has(ReasonNoCertificate) {
		t.Fatalf("err = %v, want no certificate (hidden and too deep files are not indexed)", err)
	}
	writeFile(t, dir, "a/b/example.com.crt", c, 0o644)
	writeFile(t, dir, "a/b/example.com.key", k, 0o600)
	if _, err := Prepare(baseOptions(dir, "example.com")); err != nil {
		t.Fatalf("a certificate three levels deep must be found: %v", err)
	}
}
