package tlscerts

import (
	"slices"
	"testing"
)

// TestManagedServesOnlyUncoveredHosts: a valid mounted certificate wins for
// its host; the managed (ACME) one serves the hosts nothing valid in the
// directory covers, including one whose mounted certificate expired; and
// Uncovered names exactly those hosts.
func TestManagedServesOnlyUncoveredHosts(t *testing.T) {
	ca := newCA(t)
	dir, side := t.TempDir(), t.TempDir()
	c, k := ca.issue(t, leafSpec{names: []string{"example.com"}})
	writeFile(t, dir, "example.com.crt", c, 0o644)
	writeFile(t, dir, "example.com.key", k, 0o600)
	c, k = ca.issue(t, leafSpec{names: []string{"upload.example.com"}, notBefore: testNow.AddDate(-1, 0, 0), notAfter: testNow.AddDate(0, 0, -1)})
	writeFile(t, dir, "upload.example.com.crt", c, 0o644)
	writeFile(t, dir, "upload.example.com.key", k, 0o600)
	mc, mk := ca.issue(t, leafSpec{names: []string{"example.com", "conference.example.com", "upload.example.com"}})
	managed := &Managed{CertFile: writeFile(t, side, "certificate.crt", mc, 0o644),
		KeyFile: writeFile(t, side, "certificate.key", mk, 0o600), Source: SourceACME}

	hosts := []string{"example.com", "conference.example.com", "upload.example.com"}
	opts := baseOptions(dir, hosts...)
	got, err := Uncovered(opts)
	if err != nil || !slices.Equal(got, hosts[1:]) {
		t.Fatalf("Uncovered = %v, %v; want %v", got, err, hosts[1:])
	}
	if _, err := Prepare(opts); err == nil {
		t.Fatal("Prepare without the managed certificate succeeded; the test proves nothing")
	}
	opts.Managed = managed
	res, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Source{"example.com": SourceDiscovered, "conference.example.com": SourceACME, "upload.example.com": SourceACME}
	for _, h := range res.Hosts {
		if h.Source != want[h.Host] {
			t.Errorf("%s: source %q, want %q", h.Host, h.Source, want[h.Host])
		}
		if h.Source == SourceACME && h.CertFile != managed.CertFile {
			t.Errorf("%s: certificate %s, want the managed one", h.Host, h.CertFile)
		}
	}
	if files := res.Files(); slices.Contains(files, managed.CertFile) {
		t.Errorf("Files() = %v: the managed certificate is watched, but its renewal triggers the reload itself", files)
	}
}
