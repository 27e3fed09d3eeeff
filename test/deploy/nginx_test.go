package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// templateVars are the variables the nginx image substitutes in docker/configs/nginx/templates.
var templateVars = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)\}`)

// renderNginxTemplate substitutes ${NAME} like the nginx image's envsubst step (only names it
// is given; nginx's own $variables stay).
func renderNginxTemplate(t *testing.T, vals map[string]string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "docker/configs/nginx/templates/prosody.conf.template"))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	out := templateVars.ReplaceAllStringFunc(string(src), func(m string) string {
		name := templateVars.FindStringSubmatch(m)[1]
		v, ok := vals[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		t.Fatalf("template uses variables that compose/proxy.yml does not set: %v", missing)
	}
	return out
}

func writeSelfSigned(t *testing.T, dir, host string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fullchain.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "privkey.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// nginxCheck writes the rendered server file into a throwaway prefix, inside a minimal
// nginx.conf that includes it in `http {}` as the nginx image does, and runs nginx -t.
func nginxCheck(t *testing.T, conf string) ([]byte, error) {
	t.Helper()
	nginx := requireTool(t, "nginx", "nginx")
	prefix := t.TempDir()
	for _, d := range []string{"conf.d", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	main := `pid nginx.pid;
events {}
http {
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    include conf.d/*.conf;
}
`
	if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, "conf.d", "prosody.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-t", "-q", "-e", "stderr", "-p", prefix+"/", "-c", filepath.Join(prefix, "nginx.conf"))
	return cmd.CombinedOutput()
}

func proxyValues(tlsDir string) map[string]string {
	return map[string]string{
		"NGINX_SERVER_NAME":     "xmpp.example.org",
		"NGINX_HTTP_PORT":       "8080",
		"NGINX_HTTPS_PORT":      "8443",
		"NGINX_TLS_DIR":         tlsDir,
		"PROSODY_HTTP_UPSTREAM": "127.0.0.1:5280",
	}
}

func TestNginxConfigPassesNginxT(t *testing.T) {
	tlsDir := t.TempDir()
	writeSelfSigned(t, tlsDir, "xmpp.example.org")
	conf := renderNginxTemplate(t, proxyValues(tlsDir))
	if out, err := nginxCheck(t, conf); err != nil {
		t.Fatalf("nginx -t rejected docker/configs/nginx/templates/prosody.conf.template: %v\n%s", err, out)
	}

	// What BOSH and websocket clients rely on, beyond syntax.
	for _, want := range []string{
		"location /http-bind",
		"location /xmpp-websocket",
		"proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $prosody_connection_upgrade;",
		"proxy_set_header X-Forwarded-For",
		"return 301 https://",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("rendered nginx config lacks %q", want)
		}
	}
}

// The check above can fail: a missing certificate is refused by nginx -t.
func TestNginxCheckRejectsMissingCertificate(t *testing.T) {
	conf := renderNginxTemplate(t, proxyValues(t.TempDir()))
	if out, err := nginxCheck(t, conf); err == nil {
		t.Fatalf("nginx -t accepted a config whose certificate files do not exist:\n%s", out)
	}
}

// Every variable of the template is set by compose/proxy.yml, which the image's envsubst needs.
func TestProxyComposeSetsTemplateVariables(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "docker/configs/nginx/templates/prosody.conf.template"))
	if err != nil {
		t.Fatal(err)
	}
	compose, err := os.ReadFile(filepath.Join(repoRoot(t), "compose/proxy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range templateVars.FindAllStringSubmatch(string(src), -1) {
		if !strings.Contains(string(compose), "      "+m[1]+":") {
			t.Errorf("compose/proxy.yml does not set %s, which the nginx template uses", m[1])
		}
	}
}
