package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prosody-pfe/prosody-pfe/internal/wait"
)

// The nginx proxy as an operator runs it: compose/proxy.yml (with the host-network files, as
// the engine here runs containers) interpolated by docker-compose, the shipped template
// rendered from that environment the way the nginx image does, the compose volumes standing
// for directories of this machine, and Debian's nginx running the result.

// proxyComposeFiles are the compose files of a proxied stack on a host-network engine.
var proxyComposeFiles = []string{"base", "proxy", "hostnet", "hostnet-proxy"}

// nginxTemplate is the shipped template, relative to the repository.
const nginxTemplate = "docker/configs/nginx/templates/prosody.conf.template"

// proxyDomain is the XMPP domain of the test stack.
const proxyDomain = "xmpp.example.org"

// composeMount is one bind mount of a compose service.
type composeMount struct{ Source, Target string }

// proxyStack is what docker-compose makes of the proxy files.
type proxyStack struct {
	ProxyEnv   map[string]string // the proxy container's environment
	Mounts     []composeMount
	ExtraHosts map[string]string // name → address, as the container's /etc/hosts has them
	// ProsodyEnv holds the prosody service's variables that the proxy files add or change
	// (base.yml + hostnet.yml alone are the reference).
	ProsodyEnv map[string]string
}

// composeModel runs `docker-compose config` (Debian's Compose v1) on compose files with the
// variables vars (plus PROSODY_DOMAIN) and returns the merged model.
func composeModel(t *testing.T, vars map[string]string, files ...string) map[string]any {
	t.Helper()
	dc := requireTool(t, "docker-compose", "docker-compose")
	args := []string{"--project-name", "prosodypfenginx"}
	for _, f := range files {
		args = append(args, "-f", filepath.Join(repoRoot(t), "compose", f+".yml"))
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PROSODY_DOMAIN=" + proxyDomain}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	docs := yamlDocs(t, runTool(t, t.TempDir(), env, nil, dc, append(args, "config")...))
	if len(docs) != 1 {
		t.Fatalf("docker-compose config: want one document, got %d", len(docs))
	}
	return docs[0]
}

func stringMap(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		if x != nil {
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

// loadProxyStack interpolates the proxy files with vars.
func loadProxyStack(t *testing.T, vars map[string]string) proxyStack {
	t.Helper()
	cfg := composeModel(t, vars, proxyComposeFiles...)
	proxy, ok := dig(cfg, "services", "proxy")
	if !ok {
		t.Fatal("compose/proxy.yml has no proxy service")
	}
	envOf := func(cfg map[string]any, svc string) map[string]string {
		v, _ := dig(cfg, "services", svc, "environment")
		return stringMap(v)
	}
	st := proxyStack{ProxyEnv: envOf(cfg, "proxy"), ProsodyEnv: map[string]string{}}
	hosts, _ := dig(proxy, "extra_hosts")
	st.ExtraHosts = stringMap(hosts)
	vols, _ := dig(proxy, "volumes")
	list, _ := vols.([]any)
	for _, v := range list {
		parts := strings.Split(fmt.Sprint(v), ":")
		if len(parts) < 2 {
			t.Fatalf("proxy volume %v: not source:target", v)
		}
		st.Mounts = append(st.Mounts, composeMount{Source: parts[0], Target: parts[1]})
	}
	base := envOf(composeModel(t, vars, "base", "hostnet"), "prosody")
	for k, v := range envOf(cfg, "prosody") {
		if base[k] != v {
			st.ProsodyEnv[k] = v
		}
	}
	return st
}

// hostPath is where the container path p lies on this machine: under the source of the
// mount that holds it. ok is false when no mount holds p (the container would not see it).
func (st proxyStack) hostPath(p string) (string, composeMount, bool) {
	for _, m := range st.Mounts {
		if rel, err := filepath.Rel(m.Target, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return filepath.Join(m.Source, rel), m, true
		}
	}
	return "", composeMount{}, false
}

// templateVarRE matches the ${NAME} references envsubst replaces.
var templateVarRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// renderLikeNginxImage renders the shipped template as the nginx image's
// /docker-entrypoint.d/20-envsubst-on-templates.sh does: envsubst, given in SHELL-FORMAT every
// variable defined in the container's environment (env, plus what any container has), so
// nginx's own $variables and anything the environment lacks stay as they are.
func renderLikeNginxImage(t *testing.T, env map[string]string) string {
	t.Helper()
	envsubst := requireTool(t, "envsubst", "gettext-base")
	full := map[string]string{"PATH": os.Getenv("PATH"), "HOME": "/root", "HOSTNAME": "proxy"}
	for k, v := range env {
		full[k] = v
	}
	var format, environ []string
	for k, v := range full {
		format = append(format, "${"+k+"}")
		environ = append(environ, k+"="+v)
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), nginxTemplate))
	if err != nil {
		t.Fatal(err)
	}
	out := runTool(t, "", environ, src, envsubst, strings.Join(format, " "))
	if left := templateVarRE.FindAllString(string(out), -1); len(left) > 0 {
		t.Fatalf("%s uses %v, which compose/proxy.yml does not set: nginx would get them literally", nginxTemplate, left)
	}
	return string(out)
}

// testPKI is a CA and a server certificate it signed for proxyDomain.
type testPKI struct {
	CAFile             string // the CA certificate, PEM
	CA                 *x509.CertPool
	Fullchain, Privkey []byte // PEM
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "prosody-pfe nginx test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: proxyDomain}, DNSNames: []string{proxyDomain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{CA: x509.NewCertPool(), CAFile: filepath.Join(t.TempDir(), "ca.pem")}
	p.CA.AddCert(ca)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.WriteFile(p.CAFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	p.Fullchain = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), caPEM...)
	p.Privkey = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	return p
}

// installLikeCertbot writes the pair the way certbot keeps it: the files in
// archive/<name>/fullchain1.pem and privkey1.pem, and live/<name>/fullchain.pem and
// privkey.pem relative symlinks to them. tlsDir is the container path nginx reads
// (NGINX_TLS_DIR, certbot's live/<name>); the archive is two levels up, and must lie in the
// same mount, or the links dangle inside the container.
func installLikeCertbot(t *testing.T, st proxyStack, tlsDir string, p testPKI) {
	t.Helper()
	live, m, ok := st.hostPath(tlsDir)
	if !ok {
		t.Fatalf("NGINX_TLS_DIR %q is not in any volume of the proxy service %v: nginx cannot read the certificate", tlsDir, st.Mounts)
	}
	name := filepath.Base(tlsDir)
	archive := filepath.Join(tlsDir, "..", "..", "archive", name)
	archiveHost, am, ok := st.hostPath(archive)
	if !ok || am != m {
		t.Fatalf("NGINX_TLS_DIR %q is mounted from %q at %q: certbot's live/ files are symlinks to ../../archive/, which is outside that mount (mount the whole letsencrypt directory)", tlsDir, m.Source, m.Target)
	}
	for _, d := range []string{live, archiveHost} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for file, data := range map[string][]byte{"fullchain": p.Fullchain, "privkey": p.Privkey} {
		if err := os.WriteFile(filepath.Join(archiveHost, file+"1.pem"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "archive", name, file+"1.pem"), filepath.Join(live, file+".pem")); err != nil {
			t.Fatal(err)
		}
	}
}

// nginxPrefix writes the rendered server file into a fresh nginx prefix, inside a main
// nginx.conf that includes conf.d/*.conf in `http {}` as the nginx image's does, and returns
// the prefix. Container paths in conf are replaced by their host paths (the mounts).
func nginxPrefix(t *testing.T, st proxyStack, conf string) string {
	t.Helper()
	for _, m := range st.Mounts {
		conf = strings.ReplaceAll(conf, " "+m.Target+"/", " "+m.Source+"/")
		conf = strings.ReplaceAll(conf, " "+m.Target+";", " "+m.Source+";")
	}
	prefix := t.TempDir()
	for _, d := range []string{"conf.d", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Workers run as nobody (nginx's default as root): they write request bodies in tmp.
	if err := os.Chmod(filepath.Join(prefix, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	for d := prefix; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	main := `pid nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    access_log off;
    include conf.d/*.conf;
}
`
	if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, "conf.d", "prosody.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return prefix
}

func nginxArgs(prefix string, extra ...string) []string {
	return append([]string{"-e", "stderr", "-p", prefix + "/", "-c", filepath.Join(prefix, "nginx.conf")}, extra...)
}

// proxyVars are the compose variables the test sets: its own ports and listen addresses
// (127.0.0.1 only), and directories of this machine for the mounted ones.
func proxyVars(t *testing.T, nginxHTTP, nginxHTTPS, prosodyHTTP int) map[string]string {
	return map[string]string{
		"NGINX_LISTEN_IPV4":     "127.0.0.1",
		"NGINX_LISTEN_IPV6":     "[::1]",
		"NGINX_HTTP_PORT":       strconv.Itoa(nginxHTTP),
		"NGINX_HTTPS_PORT":      strconv.Itoa(nginxHTTPS),
		"PROSODY_HTTP_UPSTREAM": "prosody:" + strconv.Itoa(prosodyHTTP),
		"LETSENCRYPT_DIR":       t.TempDir(),
		"ACME_WEBROOT":          t.TempDir(),
	}
}

// renderProxy interpolates the compose files, installs a certificate as certbot would and
// renders the template: the stack and the server file.
func renderProxy(t *testing.T, vars map[string]string, p testPKI) (proxyStack, string) {
	t.Helper()
	st := loadProxyStack(t, vars)
	installLikeCertbot(t, st, st.ProxyEnv["NGINX_TLS_DIR"], p)
	// The upstream's host resolves through the container's extra_hosts, as Docker writes them.
	if host, port, err := net.SplitHostPort(st.ProxyEnv["PROSODY_HTTP_UPSTREAM"]); err == nil && st.ExtraHosts[host] != "" {
		st.ProxyEnv["PROSODY_HTTP_UPSTREAM"] = net.JoinHostPort(st.ExtraHosts[host], port)
	}
	return st, renderLikeNginxImage(t, st.ProxyEnv)
}

// The compose file renders the template completely (no variable left to nginx, the domain as
// server name, the webroot and certificate directories mounted) and nginx -t accepts it.
func TestNginxTemplateFromComposePassesNginxT(t *testing.T) {
	nginx := requireTool(t, "nginx", "nginx")
	p := newTestPKI(t)
	st, conf := renderProxy(t, proxyVars(t, 8080, 8443, 5280), p)
	for _, want := range []string{"server_name " + proxyDomain + ";", "listen 127.0.0.1:8443 ssl;", "server 127.0.0.1:5280;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, conf)
		}
	}
	if regexp.MustCompile(`(?m)^\s*listen[^;#]*\bhttp2\b`).MatchString(conf) {
		t.Errorf("rendered config uses `listen … http2`, deprecated in the pinned nginx:\n%s", conf)
	}
	if _, _, ok := st.hostPath(st.ProxyEnv["NGINX_ACME_ROOT"]); !ok {
		t.Errorf("NGINX_ACME_ROOT %q is not in any volume of the proxy service %v: certbot's challenges would never be served", st.ProxyEnv["NGINX_ACME_ROOT"], st.Mounts)
	}
	prefix := nginxPrefix(t, st, conf)
	if out, err := exec.Command(nginx, nginxArgs(prefix, "-t", "-q")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejected %s: %v\n%s", nginxTemplate, err, out)
	}
	// The check can fail: without the certificate nginx -t refuses the config.
	live, _, _ := st.hostPath(st.ProxyEnv["NGINX_TLS_DIR"])
	if err := os.Remove(filepath.Join(live, "privkey.pem")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, nginxArgs(prefix, "-t", "-q")...).CombinedOutput(); err == nil {
		t.Fatalf("nginx -t accepted a config whose key file is missing:\n%s", out)
	}
}

// runNginx starts nginx in the foreground on prefix; t.Cleanup stops it. It returns once
// the HTTPS port accepts connections.
func runNginx(t *testing.T, prefix string, httpsPort int) {
	t.Helper()
	nginx := requireTool(t, "nginx", "nginx")
	var stderr bytes.Buffer
	cmd := exec.Command(nginx, nginxArgs(prefix, "-g", "daemon off;")...)
	cmd.Stderr = &stderr
	// Its workers share the stderr pipe: the whole group is stopped, or Wait never returns.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stopGroup(cmd, done, 10*time.Second) // SIGTERM: nginx's fast shutdown of master and workers
		if t.Failed() {
			t.Logf("nginx stderr:\n%s", lastBytes(stderr.String(), 4000))
		}
	})
	wait.Until(t, 20*time.Second, "nginx to listen", func() error {
		select {
		case <-done:
			return wait.Abort(fmt.Errorf("nginx exited: %s", stderr.String()))
		default:
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort)), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
