//go:build docker

package k8s

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/prosody-pfe/prosody-pfe/internal/entrypointtest"
	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// The image under test, built by scripts/test-docker (make test-docker), which runs these
// tests with -tags docker.
const imageEnv = "PROSODY_PFE_TEST_IMAGE"

// postgresImage is the PostgreSQL image of compose/database.yml, built from docker/images/postgres.
const postgresImage = "prosody-pfe-postgres:17"

// portSettings are the settings that move each named container port. The sandbox engine has
// only the host's network, shared with other tests, so the pod's ports are moved to free ones
// through them (TestPodEnvIsAcceptedByTheEntrypoint shows the unmoved values are the container
// ports); everything else comes from the rendered manifests.
var portSettings = map[string]string{
	"c2s": "PROSODY_C2S_PORT", "s2s": "PROSODY_S2S_PORT", "http": "PROSODY_HTTP_PORT",
	"https": "PROSODY_HTTPS_PORT", "health": "PROSODY_HEALTH_LISTEN",
}

// Each overlay's pod, run in the Docker engine as the kubelet would run it: the rendered env
// (envFrom ConfigMap, env), the pod's user, group and fsGroup, a read-only root filesystem, no
// capabilities, no privilege escalation, its volumes (the claim and the emptyDirs as
// directories owned root:fsGroup, ConfigMap and Secret volumes in
// the kubelet's ..data layout, read-only), its args, its grace period. The Secrets the overlay
// expects from outside git are made by the test (a database password; a certificate from a
// test CA for the domain and *.domain); PostgreSQL runs beside it for staging and production.
// The pod must pass its startup probe, then its readiness and liveness probes (paths and named
// ports from the spec), reload an edit of the custom ConfigMap live, and stop with exit 0
// inside terminationGracePeriodSeconds.
func TestOverlayPodRunsInDocker(t *testing.T) {
	img := testImage(t)
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) { runPod(t, img, render(t, o)) })
	}
}

func runPod(t *testing.T, img string, r *rendered) {
	ps := r.sts.Spec.Template.Spec
	c := r.container()
	if !strings.HasPrefix(c.Image, "prosody-pfe:") {
		t.Fatalf("container image %q: want the prosody-pfe image (the test runs %s in its place)", c.Image, img)
	}
	sc := ps.SecurityContext
	if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil || sc.FSGroup == nil {
		t.Fatalf("pod securityContext %+v: want runAsUser, runAsGroup and fsGroup", sc)
	}
	uid, gid, fsGroup := int(*sc.RunAsUser), int(*sc.RunAsGroup), int(*sc.FSGroup)
	name := uniqueName("pfe-k8s-" + r.overlay + "-")

	env := podEnv(t, r, nil)
	// The listeners on free loopback ports (see portSettings).
	hostPort := map[string]int{}
	ports, err := entrypointtest.FreePorts(len(portSettings))
	if err != nil {
		t.Fatal(err)
	}
	for i, pn := range slices.Sorted(maps.Keys(portSettings)) {
		hostPort[pn] = ports[i]
		env[portSettings[pn]] = strconv.Itoa(ports[i])
	}
	env["PROSODY_HEALTH_LISTEN"] = "127.0.0.1:" + env["PROSODY_HEALTH_LISTEN"]
	env["PROSODY_INTERFACES"] = "127.0.0.1"

	secrets := externalSecrets(t, r, env["PROSODY_DOMAIN"])
	var addHosts []string
	var pg string
	if env["PROSODY_STORAGE"] == "postgres" {
		pgPort := startPostgres(t, env["PROSODY_DB_USER"], env["PROSODY_DB_NAME"], string(secrets[dbSecret]["password"]))
		pg = pgPort.name
		env["PROSODY_DB_PORT"] = strconv.Itoa(pgPort.port)
		// The Service name resolves to the database, as the cluster's DNS would make it.
		if net.ParseIP(env["PROSODY_DB_HOST"]) == nil {
			addHosts = append(addHosts, "--add-host", env["PROSODY_DB_HOST"]+":127.0.0.1")
		}
	}

	args := []string{"run", "--detach", "--name", name, "--network", "host", "--no-healthcheck",
		"--user", fmt.Sprintf("%d:%d", uid, gid), "--group-add", strconv.Itoa(fsGroup)}
	args = append(args, addHosts...)
	if g := ps.TerminationGracePeriodSeconds; g != nil {
		args = append(args, "--stop-timeout", strconv.Itoa(int(*g)))
	}
	csc := c.SecurityContext
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || csc.AllowPrivilegeEscalation == nil || csc.Capabilities == nil {
		t.Fatalf("container securityContext %+v: want readOnlyRootFilesystem, allowPrivilegeEscalation and capabilities", csc)
	}
	if *csc.ReadOnlyRootFilesystem {
		args = append(args, "--read-only")
	}
	if !*csc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	for _, cp := range csc.Capabilities.Drop {
		args = append(args, "--cap-drop", string(cp))
	}
	for _, cp := range csc.Capabilities.Add {
		args = append(args, "--cap-add", string(cp))
	}
	if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		args = append(args, "--memory", strconv.FormatInt(m.Value(), 10))
	}
	vols := mountVolumes(t, r, fsGroup, secrets)
	args = append(args, vols.args...)
	for _, kv := range environ(env) {
		args = append(args, "--env", kv)
	}
	if len(c.Command) > 0 {
		args = append(args, "--entrypoint", c.Command[0])
	}
	args = append(args, img)
	if len(c.Command) > 1 {
		args = append(args, c.Command[1:]...)
	}
	args = append(args, c.Args...)
	docker(t, time.Minute, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs(name))
		}
		_, _ = dockerErr(time.Minute, "rm", "--force", "--volumes", name)
	})

	// Probes, as the kubelet runs them: the startup probe until it passes (within
	// periodSeconds × failureThreshold), then readiness and liveness.
	probeURL := func(p *corev1.Probe) string {
		port := hostPort[p.HTTPGet.Port.String()]
		if port == 0 {
			t.Fatalf("probe port %s names no container port", p.HTTPGet.Port.String())
		}
		return fmt.Sprintf("http://127.0.0.1:%d%s", port, p.HTTPGet.Path)
	}
	sp := c.StartupProbe
	budget := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second
	start := time.Now()
	wait.Until(t, min(budget, 3*time.Minute), "the startup probe "+probeURL(sp), func() error {
		if st := containerState(t, name); st != "running" {
			return wait.Abort(fmt.Errorf("the container is %s", st))
		}
		return probe(sp, probeURL(sp))
	})
	t.Logf("%s: startup probe passed %s after docker run", r.overlay, time.Since(start).Round(time.Millisecond))
	for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if err := probe(p, probeURL(p)); err != nil {
			t.Errorf("%s probe: %v", what, err)
		}
	}

	// What the server runs with, as /status (loopback) tells it.
	st := status(t, hostPort["health"])
	if st.Environment != env["PROSODY_ENVIRONMENT"] || !slices.Contains(st.Hosts, env["PROSODY_DOMAIN"]) {
		t.Errorf("/status: environment %q, hosts %v; want %q serving %s", st.Environment, st.Hosts, env["PROSODY_ENVIRONMENT"], env["PROSODY_DOMAIN"])
	}
	if pg != "" && (st.Database == nil || !st.Database.Reachable) {
		t.Errorf("/status database %+v: want PostgreSQL reachable", st.Database)
	}

	// An edit of the custom ConfigMap, delivered the kubelet's way (a new ..data), is reloaded
	// live: same pod, same Prosody process.
	before := reloads(t, hostPort["health"])
	vols.updateConfigMap(t, customConfigMap, func(data map[string]string) {
		for k, v := range data {
			data[k] = strings.Replace(v, `"description": "`, `"description": "Edited live. `, 1)
		}
	})
	wait.Until(t, time.Minute, "a reload after the custom ConfigMap changed", func() error {
		if n := reloads(t, hostPort["health"]); n <= before {
			return fmt.Errorf("prosody_pfe_reloads_total is %v, was %v", n, before)
		}
		return nil
	})
	after := status(t, hostPort["health"])
	if after.LastReload != nil {
		t.Logf("%s: the custom ConfigMap edit was reloaded: %s", r.overlay, after.LastReload.Outcome)
	}
	if after.Child.PID != st.Child.PID || after.LastReload == nil || after.LastReload.Outcome == "failed" || after.LastReload.Outcome == "refused" {
		t.Errorf("after the ConfigMap edit: child %d (was %d), last reload %+v: want the same Prosody and a reload that took", after.Child.PID, st.Child.PID, after.LastReload)
	}

	// Termination: SIGTERM, then exit 0 by itself inside the grace period.
	grace := time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second
	begin := time.Now()
	docker(t, grace+30*time.Second, "stop", "--time", strconv.Itoa(int(grace.Seconds())), name)
	took := time.Since(begin)
	if out := docker(t, 10*time.Second, "inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", name); out != "0 false" || took >= grace {
		t.Errorf("after SIGTERM: exit code and OOMKilled %q after %s; want \"0 false\" inside %s", out, took, grace)
	}
	t.Logf("%s: stopped with exit 0 in %s", r.overlay, took.Round(time.Millisecond))
}

// probe is one HTTP GET of the kubelet: success is a status from 200 to 399 within
// timeoutSeconds.
func probe(p *corev1.Probe, url string) error {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

type statusDoc struct {
	Environment string   `json:"environment"`
	Hosts       []string `json:"hosts"`
	Child       struct {
		PID int `json:"pid"`
	} `json:"child"`
	LastReload *struct {
		Outcome string `json:"outcome"`
	} `json:"last_reload"`
	Database *struct {
		Reachable bool   `json:"reachable"`
		Detail    string `json:"detail"`
	} `json:"database"`
}

func status(t *testing.T, port int) statusDoc {
	t.Helper()
	var st statusDoc
	if err := json.Unmarshal(get(t, port, "/status"), &st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	return st
}

// reloads is the sum of prosody_pfe_reloads_total over its outcomes.
func reloads(t *testing.T, port int) float64 {
	t.Helper()
	var n float64
	for _, line := range strings.Split(string(get(t, port, "/metrics")), "\n") {
		if strings.HasPrefix(line, "prosody_pfe_reloads_total{") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("/metrics line %q: %v", line, err)
			}
			n += v
		}
	}
	return n
}

func get(t *testing.T, port int, path string) []byte {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", path, resp.Status, err)
	}
	return []byte(b.String())
}

// externalSecrets are the Secrets the overlay's pod mounts but does not render (created
// outside git): the database password, and a certificate for the domain and *.domain signed
// by a throwaway CA (production and staging refuse self-signed ones).
func externalSecrets(t *testing.T, r *rendered, domain string) map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for _, v := range r.sts.Spec.Template.Spec.Volumes {
		if v.Secret == nil || r.secrets[v.Secret.SecretName] != nil {
			continue
		}
		switch v.Secret.SecretName {
		case dbSecret:
			b := make([]byte, 18)
			_, _ = rand.Read(b)
			out[dbSecret] = map[string][]byte{"password": []byte(hex.EncodeToString(b))}
		case tlsSecret:
			crt, key := testCertificate(t, domain)
			out[tlsSecret] = map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}
		default:
			t.Fatalf("the pod mounts Secret %s, which the test does not know how to make", v.Secret.SecretName)
		}
	}
	for n, s := range r.secrets {
		out[n] = s.Data
	}
	return out
}

// testCertificate is a leaf for domain and *.domain and its CA, as tls.crt (leaf, then CA)
// and tls.key, the way cert-manager writes a TLS Secret.
func testCertificate(t *testing.T, domain string) (crt, key []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "prosody-pfe k8s test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: domain},
		DNSNames: []string{domain, "*." + domain}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(60 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	crt = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	return crt, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// podVolumes are the docker run options for the pod's volumes, and the host directories of its
// ConfigMap volumes (to update them as the kubelet does).
type podVolumes struct {
	args       []string
	configMaps map[string]*atomicDir // by ConfigMap name
}

// mountVolumes makes every volume the container mounts the way the kubelet provides it.
func mountVolumes(t *testing.T, r *rendered, fsGroup int, secrets map[string]map[string][]byte) *podVolumes {
	pv := &podVolumes{configMaps: map[string]*atomicDir{}}
	vols := volumes(r)
	claims := map[string]bool{}
	for _, c := range r.sts.Spec.VolumeClaimTemplates {
		claims[c.Name] = true
	}
	base := t.TempDir()
	for _, m := range r.container().VolumeMounts {
		if m.SubPath != "" {
			t.Fatalf("volumeMount %s uses subPath: the kubelet never updates those (no live reload)", m.Name)
		}
		dir := filepath.Join(base, m.Name)
		v := vols[m.Name]
		switch {
		case claims[m.Name]:
			// A fresh volume, given to fsGroup (fsGroupChangePolicy OnRootMismatch): setgid, group rwx.
			ownedDir(t, dir, fsGroup, 0o2775)
			pv.args = append(pv.args, "--volume", dir+":"+m.MountPath)
		case v != nil && v.EmptyDir != nil:
			// The kubelet makes an emptyDir 0777 (a tmpfs for medium Memory), then applies
			// fsGroup. A host directory stands in for both: Docker gives a tmpfs mounted over a
			// directory of the image that directory's mode (/run: 0755), which the kubelet does not.
			ownedDir(t, dir, fsGroup, 0o2777)
			pv.args = append(pv.args, "--volume", dir+":"+m.MountPath)
		case v != nil && v.ConfigMap != nil:
			cm := r.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: ConfigMap %s is not rendered", m.Name, v.ConfigMap.Name)
			}
			ad := &atomicDir{dir: dir, items: v.ConfigMap.Items, mode: modeOr(v.ConfigMap.DefaultMode, 0o644), gid: fsGroup, data: map[string]string{}}
			for k, val := range cm.Data {
				ad.data[k] = val
			}
			ad.write(t)
			pv.configMaps[cm.Name] = ad
			pv.args = append(pv.args, "--volume", dir+":"+m.MountPath+":ro")
		case v != nil && v.Secret != nil:
			s, ok := secrets[v.Secret.SecretName]
			if !ok {
				t.Fatalf("volume %s: Secret %s is neither rendered nor made by the test", m.Name, v.Secret.SecretName)
			}
			ad := &atomicDir{dir: dir, items: v.Secret.Items, mode: modeOr(v.Secret.DefaultMode, 0o644), gid: fsGroup, data: map[string]string{}}
			for k, val := range s {
				ad.data[k] = string(val)
			}
			ad.write(t)
			pv.args = append(pv.args, "--volume", dir+":"+m.MountPath+":ro")
		default:
			t.Fatalf("volumeMount %s: volume type %+v is not emulated by the test", m.Name, v)
		}
	}
	return pv
}

func (pv *podVolumes) updateConfigMap(t *testing.T, name string, edit func(map[string]string)) {
	ad := pv.configMaps[name]
	if ad == nil {
		t.Fatalf("ConfigMap %s is not mounted", name)
	}
	edit(ad.data)
	ad.write(t)
}

func modeOr(m *int32, def os.FileMode) os.FileMode {
	if m == nil {
		return def
	}
	return os.FileMode(*m)
}

func ownedDir(t *testing.T, dir string, gid int, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 0, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode&os.ModePerm|setgid(mode)); err != nil {
		t.Fatal(err)
	}
}

func setgid(mode os.FileMode) os.FileMode {
	if mode&0o2000 != 0 {
		return os.ModeSetgid
	}
	return 0
}

// atomicDir is a ConfigMap or Secret volume in the kubelet's AtomicWriter layout: the files in
// a timestamped ..<ts> directory, a ..data symlink to it, and each top-level name a symlink
// through ..data. An update writes a new ..<ts> and renames a new ..data over the old one.
type atomicDir struct {
	dir   string
	items []corev1.KeyToPath
	mode  os.FileMode
	gid   int
	data  map[string]string
	gen   int
}

func (a *atomicDir) write(t *testing.T) {
	t.Helper()
	ownedDir(t, a.dir, a.gid, 0o2755) // fsGroup on a read-only volume: group r-x, setgid
	a.gen++
	ts := fmt.Sprintf("..%s_%d", time.Now().UTC().Format("2006_01_02_15_04_05"), a.gen)
	files := map[string]string{} // path in the volume -> content
	modes := map[string]os.FileMode{}
	if len(a.items) == 0 {
		for k, v := range a.data {
			files[k] = v
		}
	}
	for _, it := range a.items {
		v, ok := a.data[it.Key]
		if !ok {
			t.Fatalf("volume item %s: no such key", it.Key)
		}
		files[it.Path] = v
		if it.Mode != nil {
			modes[it.Path] = os.FileMode(*it.Mode)
		}
	}
	tops := map[string]bool{}
	for p, content := range files {
		full := filepath.Join(a.dir, ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		for d := filepath.Dir(full); d != a.dir; d = filepath.Dir(d) {
			if err := os.Chown(d, 0, a.gid); err != nil {
				t.Fatal(err)
			}
		}
		mode := a.mode
		if m, ok := modes[p]; ok {
			mode = m
		}
		// fsGroup on a read-only volume adds group read (pkg/volume.SetVolumeOwnership).
		mode |= 0o440
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(full, 0, a.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
		tops[strings.Split(p, "/")[0]] = true
	}
	tmp := filepath.Join(a.dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(a.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for top := range tops {
		link := filepath.Join(a.dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", top), link); err != nil {
			t.Fatal(err)
		}
	}
}

type postgres struct {
	name string
	port int
}

// startPostgres runs PostgreSQL (docker/images/postgres) on a free loopback port with the
// database, user and password the pod's settings and Secret name.
func startPostgres(t *testing.T, user, db, password string) postgres {
	t.Helper()
	if _, err := dockerErr(30*time.Second, "image", "inspect", postgresImage); err != nil {
		docker(t, 10*time.Minute, "build", "--quiet", "--network", "host", "-t", postgresImage, filepath.Join(repoRoot(t), "docker", "images", "postgres"))
	}
	p, err := entrypointtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	pg := postgres{name: uniqueName("pfe-k8s-pg-"), port: p[0]}
	docker(t, time.Minute, "run", "--detach", "--name", pg.name, "--network", "host",
		"--env", "PGPORT="+strconv.Itoa(pg.port), "--env", "POSTGRES_USER="+user, "--env", "POSTGRES_DB="+db,
		"--env", "POSTGRES_PASSWORD="+password, postgresImage, "postgres", "-c", "listen_addresses=127.0.0.1")
	t.Cleanup(func() { _, _ = dockerErr(time.Minute, "rm", "--force", "--volumes", pg.name) })
	wait.Until(t, 2*time.Minute, "PostgreSQL accepting connections", func() error {
		if st := containerState(t, pg.name); st != "running" {
			return wait.Abort(fmt.Errorf("postgres container is %s\n%s", st, logs(pg.name)))
		}
		_, err := dockerErr(10*time.Second, "exec", pg.name, "pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", user, "-d", db)
		return err
	})
	return pg
}

// testImage is the image under test; without it the test fails (never skips) with the command
// that provides it.
func testImage(t *testing.T) string {
	t.Helper()
	img := os.Getenv(imageEnv)
	if img == "" {
		t.Fatalf("%s is not set: run `make test-docker` (scripts/test-docker builds the image and runs these tests)", imageEnv)
	}
	if _, err := dockerErr(30*time.Second, "image", "inspect", img); err != nil {
		t.Fatalf("image %s not found in the engine at DOCKER_HOST=%q: %v", img, os.Getenv("DOCKER_HOST"), err)
	}
	return img
}

func docker(t *testing.T, d time.Duration, args ...string) string {
	t.Helper()
	out, err := dockerErr(d, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func dockerErr(d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func containerState(t *testing.T, name string) string {
	t.Helper()
	return docker(t, 10*time.Second, "inspect", "--format", "{{.State.Status}}", name)
}

func logs(name string) string {
	out, _ := dockerErr(10*time.Second, "logs", "--tail", "60", name)
	return "logs of " + name + ":\n" + out
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
