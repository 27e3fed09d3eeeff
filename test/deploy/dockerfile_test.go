package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Dockerfile's contract with the entrypoint and with the other deployment files. (The image
// itself is built and run by the image end-to-end test.)
func TestDockerfileContract(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{
		`ENTRYPOINT ["entrypoint"]`,
		`CMD ["prosody"]`,
		`CMD ["entrypoint", "healthcheck"]`,
		`VOLUME ["/var/lib/prosody", "/etc/prosody/certs", "/etc/prosody-pfe/custom"]`,
		`COPY config/ /usr/share/prosody-pfe/config/`,
		`FROM ${BASE_IMAGE} AS runtime`,
		`ARG BASE_IMAGE=debian:${DEBIAN_SUITE}-slim`,
		`ARG DEBIAN_SUITE=trixie`,
		`ARG TARGETARCH`,
		`org.opencontainers.image.licenses="MIT"`,
		`ln -s entrypoint /usr/local/bin/prosodyctl`,
		`org.opencontainers.image.source=`,
		`org.opencontainers.image.version="${VERSION}"`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	for _, pkg := range []string{"prosody", "prosody-modules", "lua-dbi-sqlite3", "lua-dbi-postgresql", "lua-unbound", "lua-ldap", "ca-certificates", "lua5.4", "sqlite3", "postgresql-client"} {
		if !regexp.MustCompile(`(?m)[ \t]` + regexp.QuoteMeta(pkg) + `([ \t]|$)`).MatchString(df) {
			t.Errorf("Dockerfile does not install %s", pkg)
		}
	}
	if regexp.MustCompile(`(?m)^USER `).MatchString(df) {
		t.Error("Dockerfile sets USER: the entrypoint must start as root by default to prepare volumes and drop to prosody")
	}

	// The fixed prosody uid/gid is the one Kubernetes and Compose rely on.
	uid := regexp.MustCompile(`ARG PROSODY_UID=(\d+)`).FindStringSubmatch(df)
	gid := regexp.MustCompile(`ARG PROSODY_GID=(\d+)`).FindStringSubmatch(df)
	if uid == nil || gid == nil {
		t.Fatal("Dockerfile does not fix the prosody uid/gid (ARG PROSODY_UID, PROSODY_GID)")
	}
	k8s, err := os.ReadFile(filepath.Join(root, "docker/k8s/base/statefulset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"runAsUser: " + uid[1], "runAsGroup: " + gid[1], "fsGroup: " + gid[1]} {
		if !strings.Contains(string(k8s), want) {
			t.Errorf("statefulset.yaml lacks %q (the image's prosody ids)", want)
		}
	}
	backup, err := os.ReadFile(filepath.Join(root, "compose/backup.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(backup), `user: "`+uid[1]+":"+gid[1]+`"`) {
		t.Errorf("compose/backup.yml does not run as the image's prosody user %s:%s", uid[1], gid[1])
	}

	// Only the binaries (the host's, and one per architecture) and the config tree enter the
	// build context.
	ign, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, l := range strings.Split(string(ign), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, l)
		}
	}
	if want := "* !dist/entrypoint !dist/entrypoint-amd64 !dist/entrypoint-arm64 !config/"; strings.Join(rules, " ") != want {
		t.Errorf(".dockerignore rules = %v, want the allow-list [%s]", rules, want)
	}
}
