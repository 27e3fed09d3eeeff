package k8s

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// podEnv is the environment the kubelet gives the container, as
// pkg/kubelet/kubelet_pods.go (makeEnvironmentVariables) builds it: the keys of the envFrom
// ConfigMaps, then env (which wins), then the service links of every Service with a cluster IP
// in the pod's namespace unless enableServiceLinks is false, and always those of the API
// server's Service "kubernetes". Links never replace a variable already set. files replaces a
// value that is a path (the *_FILE variables) where the test keeps that file instead.
func podEnv(t testing.TB, r *rendered, files map[string]string) map[string]string {
	t.Helper()
	c := r.container()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil || from.Prefix != "" {
			t.Fatalf("envFrom %+v: the test reads only configMapRef without a prefix", from)
		}
		cm := r.configMaps[from.ConfigMapRef.Name]
		if cm == nil {
			t.Fatalf("envFrom ConfigMap %s is not rendered", from.ConfigMapRef.Name)
		}
		maps.Copy(env, cm.Data)
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Fatalf("env %s uses valueFrom: the test reads only literal values", e.Name)
		}
		env[e.Name] = e.Value
		if f, ok := files[e.Value]; ok {
			env[e.Name] = f
		}
	}
	links := serviceLinks(&corev1.Service{
		ObjectMeta: r.namespace.ObjectMeta, // only the name matters below
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}},
	}, "kubernetes")
	if sl := r.sts.Spec.Template.Spec.EnableServiceLinks; sl == nil || *sl {
		names := slices.Sorted(maps.Keys(r.services))
		for i, name := range names {
			s := r.services[name].DeepCopy()
			if s.Spec.ClusterIP == corev1.ClusterIPNone {
				continue // headless: no links
			}
			s.Spec.ClusterIP = fmt.Sprintf("10.96.1.%d", i+1) // the API server would assign one
			maps.Copy(links, serviceLinks(s, name))
		}
	}
	for k, v := range links {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	return env
}

// serviceLinks are the Docker-link-style variables of one Service, as
// pkg/kubelet/envvars.FromServices writes them.
func serviceLinks(s *corev1.Service, name string) map[string]string {
	if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	prefix := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	ip := s.Spec.ClusterIP
	env := map[string]string{
		prefix + "_SERVICE_HOST": ip,
		prefix + "_SERVICE_PORT": strconv.Itoa(int(s.Spec.Ports[0].Port)),
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			env[prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))] = strconv.Itoa(int(p.Port))
		}
	}
	first := s.Spec.Ports[0]
	env[prefix+"_PORT"] = fmt.Sprintf("%s://%s", strings.ToLower(protocol(first)), net.JoinHostPort(ip, strconv.Itoa(int(first.Port))))
	for _, p := range s.Spec.Ports {
		proto := protocol(p)
		pfx := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(proto))
		env[pfx] = fmt.Sprintf("%s://%s", strings.ToLower(proto), net.JoinHostPort(ip, strconv.Itoa(int(p.Port))))
		env[pfx+"_PROTO"] = strings.ToLower(proto)
		env[pfx+"_PORT"] = strconv.Itoa(int(p.Port))
		env[pfx+"_ADDR"] = ip
	}
	return env
}

func protocol(p corev1.ServicePort) string {
	if p.Protocol == "" {
		return string(corev1.ProtocolTCP)
	}
	return string(p.Protocol)
}

// environ is env as os.Environ would list it, sorted.
func environ(env map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// secretFiles writes a stand-in for every file the pod's *_FILE variables name (the Secrets
// created outside git) and returns the path each was written to.
func secretFiles(t testing.TB, r *rendered) map[string]string {
	t.Helper()
	files := map[string]string{}
	dir := t.TempDir()
	for _, e := range r.container().Env {
		if strings.HasSuffix(e.Name, "_FILE") {
			p := filepath.Join(dir, e.Name)
			if err := os.WriteFile(p, []byte("stand-in-secret-value\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			files[e.Value] = p
		}
	}
	return files
}

// The entrypoint's own settings loader accepts the environment each overlay's pod gets, with
// no warning, and the ports it then listens on are the container ports the Services, probes
// and NetworkPolicy name.
func TestPodEnvIsAcceptedByTheEntrypoint(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			r := render(t, o)
			s, warnings, err := settings.Load(environ(podEnv(t, r, secretFiles(t, r))))
			if err != nil {
				t.Fatalf("the entrypoint refuses the pod's environment (exit 78): %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w)
			}
			_, health, err := net.SplitHostPort(s.HealthListen)
			if err != nil {
				t.Fatalf("PROSODY_HEALTH_LISTEN %q: %v", s.HealthListen, err)
			}
			hp, _ := strconv.Atoi(health)
			got := map[string]int32{"c2s": int32(s.C2SPort), "s2s": int32(s.S2SPort), "http": int32(s.HTTPPort), "https": int32(s.HTTPSPort), "health": int32(hp)}
			if !maps.Equal(got, containerPorts) {
				t.Errorf("the entrypoint listens on %v; the container ports are %v", got, containerPorts)
			}
			if want := map[string]string{"development": "development", "staging": "staging", "production": "production"}[o]; s.Environment != want {
				t.Errorf("PROSODY_ENVIRONMENT = %q, want %q", s.Environment, want)
			}
		})
	}
}

// Why enableServiceLinks: false is load-bearing: with service links on, the kubelet's
// variables for the Service "prosody" (PROSODY_PORT, PROSODY_SERVICE_HOST, ...) reach the
// entrypoint, which refuses them and exits 78 before anything starts: a crash loop.
func TestPodServiceLinksStopTheEntrypoint(t *testing.T) {
	r := render(t, "production")
	on := true
	r.sts.Spec.Template.Spec.EnableServiceLinks = &on
	env := podEnv(t, r, secretFiles(t, r))
	if env["PROSODY_PORT"] == "" {
		t.Fatalf("the kubelet's service links for %q are missing from %v", xmppService, environ(env))
	}
	_, _, err := settings.Load(environ(env))
	if err == nil || !strings.Contains(err.Error(), "PROSODY_PORT") || !strings.Contains(err.Error(), "PROSODY_HTTP_PORT") {
		t.Fatalf("with service links on, settings.Load = %v; want it to refuse PROSODY_PORT and PROSODY_HTTP_PORT", err)
	}
	t.Logf("with enableServiceLinks on: %v", err)
}
