package deploy

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// kustomize renders an overlay offline with kubectl's built-in kustomize.
func kustomize(t *testing.T, overlay string) []map[string]any {
	t.Helper()
	// kubectl 1.27+ (kustomize v5) comes with these machines as the "kubectl" package; Debian's
	// kubernetes-client (1.20) embeds a kustomize too old for these files.
	kubectl := requireTool(t, "kubectl", "kubectl")
	root := repoRoot(t)
	out := runTool(t, root, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, nil, kubectl, "kustomize", "docker/k8s/overlays/"+overlay)
	return yamlDocs(t, out)
}

// required lists, per kind, the apiVersion and the fields the API server rejects an object
// without (structural check: no API server is available offline).
var required = map[string]struct {
	apiVersion string
	fields     [][]any
}{
	"Namespace":   {"v1", nil},
	"ConfigMap":   {"v1", [][]any{{"data"}}},
	"Secret":      {"v1", [][]any{{"data"}}},
	"Service":     {"v1", [][]any{{"spec", "ports", 0, "port"}, {"spec", "selector"}}},
	"StatefulSet": {"apps/v1", [][]any{{"spec", "selector", "matchLabels"}, {"spec", "serviceName"}, {"spec", "template", "spec", "containers", 0, "image"}}},
	"Ingress":     {"networking.k8s.io/v1", [][]any{{"spec", "rules", 0, "http", "paths", 0, "backend", "service", "name"}}},
}

func TestKustomizeOverlays(t *testing.T) {
	for _, env := range []string{"development", "staging", "production"} {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			docs := kustomize(t, env)
			byKind := map[string][]map[string]any{}
			var namespace string
			for _, d := range docs {
				kind := digString(d, "kind")
				req, ok := required[kind]
				if !ok {
					t.Errorf("unexpected kind %q (no HorizontalPodAutoscaler or others: see docs/deployment.md)", kind)
					continue
				}
				if got := digString(d, "apiVersion"); got != req.apiVersion {
					t.Errorf("%s apiVersion = %q, want %q", kind, got, req.apiVersion)
				}
				name := digString(d, "metadata", "name")
				if name == "" {
					t.Errorf("%s without metadata.name", kind)
				}
				for _, f := range req.fields {
					if _, ok := dig(d, f...); !ok {
						t.Errorf("%s %s lacks %v", kind, name, f)
					}
				}
				if kind == "Namespace" {
					namespace = name
				} else if ns := digString(d, "metadata", "namespace"); ns == "" {
					t.Errorf("%s %s has no namespace", kind, name)
				}
				byKind[kind] = append(byKind[kind], d)
			}
			if len(byKind["Namespace"]) != 1 || len(byKind["StatefulSet"]) != 1 || len(byKind["Ingress"]) != 1 {
				t.Fatalf("want one Namespace, StatefulSet and Ingress, got %d, %d, %d", len(byKind["Namespace"]), len(byKind["StatefulSet"]), len(byKind["Ingress"]))
			}
			for _, list := range byKind {
				for _, d := range list {
					if ns := digString(d, "metadata", "namespace"); ns != "" && ns != namespace {
						t.Errorf("%s in namespace %q, the overlay's Namespace is %q", digString(d, "metadata", "name"), ns, namespace)
					}
				}
			}
			checkStatefulSet(t, byKind["StatefulSet"][0], byKind)
			checkIngress(t, byKind["Ingress"][0], byKind["Service"])

			secretGenerated := len(byKind["Secret"]) > 0
			if env == "development" && !secretGenerated {
				t.Error("development should generate its database Secret")
			}
			if env != "development" && secretGenerated {
				t.Errorf("%s must not ship a database password in git: the Secret is created outside", env)
			}
		})
	}
}

func checkStatefulSet(t *testing.T, sts map[string]any, byKind map[string][]map[string]any) {
	t.Helper()
	if r, _ := dig(sts, "spec", "replicas"); r != float64(1) {
		t.Errorf("replicas = %v: Prosody has no clustering, a StatefulSet runs exactly one server", r)
	}
	pod, _ := dig(sts, "spec", "template")
	sel, _ := dig(sts, "spec", "selector", "matchLabels")
	for k, v := range sel.(map[string]any) {
		if got := digString(pod, "metadata", "labels", k); got != v {
			t.Errorf("selector %s=%v does not match the pod template label %q", k, v, got)
		}
	}
	ps, _ := dig(pod, "spec", "securityContext")
	if digFloat(ps, "runAsUser") != 101 || digFloat(ps, "fsGroup") != 101 {
		t.Errorf("pod securityContext %v: want runAsUser and fsGroup 101 (the image's prosody user)", ps)
	}
	if nr, _ := dig(ps, "runAsNonRoot"); nr != true {
		t.Error("pod must set runAsNonRoot")
	}
	c, _ := dig(pod, "spec", "containers", 0)
	if ro, _ := dig(c, "securityContext", "readOnlyRootFilesystem"); ro != true {
		t.Error("container must have readOnlyRootFilesystem")
	}
	if ape, _ := dig(c, "securityContext", "allowPrivilegeEscalation"); ape != false {
		t.Error("container must set allowPrivilegeEscalation: false")
	}
	for probe, path := range map[string]string{"livenessProbe": "/livez", "readinessProbe": "/readyz", "startupProbe": "/readyz"} {
		if got := digString(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %q, want %s", probe, got, path)
		}
		if got := digString(c, probe, "httpGet", "port"); got != "health" {
			t.Errorf("%s port = %q, want the health port", probe, got)
		}
	}
	ports := map[string]float64{}
	cp, _ := dig(c, "ports")
	for _, p := range cp.([]any) {
		ports[digString(p, "name")] = digFloat(p, "containerPort")
	}
	for name, port := range map[string]float64{"c2s": 5222, "s2s": 5269, "http": 5280, "https": 5281, "health": 5282} {
		if ports[name] != port {
			t.Errorf("container port %s = %v, want %v", name, ports[name], port)
		}
	}

	// Every volume is declared, and the runtime dir is an emptyDir (read-only root).
	vols := map[string]map[string]any{}
	vl, _ := dig(pod, "spec", "volumes")
	for _, v := range vl.([]any) {
		vols[digString(v, "name")] = v.(map[string]any)
	}
	claims := map[string]bool{}
	ct, _ := dig(sts, "spec", "volumeClaimTemplates")
	for _, v := range ct.([]any) {
		claims[digString(v, "metadata", "name")] = true
	}
	mounts := map[string]string{}
	ml, _ := dig(c, "volumeMounts")
	for _, m := range ml.([]any) {
		name := digString(m, "name")
		mounts[digString(m, "mountPath")] = name
		if vols[name] == nil && !claims[name] {
			t.Errorf("volumeMount %s names no volume or claim", name)
		}
	}
	if !claims[mounts["/var/lib/prosody"]] {
		t.Error("/var/lib/prosody must be on the volume claim")
	}
	if _, ok := vols[mounts["/run/prosody-pfe"]]["emptyDir"]; !ok {
		t.Error("/run/prosody-pfe must be an emptyDir")
	}

	// The password reaches the entrypoint as a file from the Secret.
	env := map[string]string{}
	el, _ := dig(c, "env")
	for _, e := range el.([]any) {
		env[digString(e, "name")] = digString(e, "value")
	}
	pwFile := env["PROSODY_DB_PASSWORD_FILE"]
	secretVol := vols[mounts[pwFile[:strings.LastIndex(pwFile, "/")]]]
	secretName := digString(secretVol, "secret", "secretName")
	if !strings.HasPrefix(secretName, "prosody-db") {
		t.Errorf("PROSODY_DB_PASSWORD_FILE=%q is not in a mounted Secret volume (got %v)", pwFile, secretVol)
	}
	for _, s := range byKind["Secret"] {
		if digString(s, "metadata", "name") == secretName {
			if _, ok := dig(s, "data", pwFile[strings.LastIndex(pwFile, "/")+1:]); !ok {
				t.Errorf("Secret %s has no key for %s", secretName, pwFile)
			}
		}
	}
	// envFrom and the custom ConfigMap refer to rendered ConfigMaps (hash suffixes included).
	cms := map[string]map[string]any{}
	for _, cm := range byKind["ConfigMap"] {
		cms[digString(cm, "metadata", "name")] = cm
	}
	envCM := digString(c, "envFrom", 0, "configMapRef", "name")
	if cms[envCM] == nil {
		t.Errorf("envFrom ConfigMap %q is not rendered", envCM)
	} else if digString(cms[envCM], "data", "PROSODY_DOMAIN") == "" {
		t.Error("the env ConfigMap sets no PROSODY_DOMAIN")
	}
	customCM := digString(vols[mounts["/etc/prosody-pfe/custom"]], "configMap", "name")
	if cms[customCM] == nil {
		t.Errorf("custom ConfigMap %q is not rendered", customCM)
	}
	items, _ := dig(vols[mounts["/etc/prosody-pfe/custom"]], "configMap", "items")
	for _, it := range items.([]any) {
		if _, ok := dig(cms[customCM], "data", digString(it, "key")); !ok {
			t.Errorf("custom ConfigMap has no key %s", digString(it, "key"))
		}
	}
}

func checkIngress(t *testing.T, ing map[string]any, services []map[string]any) {
	t.Helper()
	svcPorts := map[string]bool{}
	for _, s := range services {
		pl, _ := dig(s, "spec", "ports")
		for _, p := range pl.([]any) {
			svcPorts[fmt.Sprintf("%s/%s", digString(s, "metadata", "name"), digString(p, "name"))] = true
		}
	}
	paths := map[string]bool{}
	pl, _ := dig(ing, "spec", "rules", 0, "http", "paths")
	for _, p := range pl.([]any) {
		paths[digString(p, "path")] = true
		ref := digString(p, "backend", "service", "name") + "/" + digString(p, "backend", "service", "port", "name")
		if !svcPorts[ref] {
			t.Errorf("Ingress path %s points at %s, which no Service port provides", digString(p, "path"), ref)
		}
	}
	for _, want := range []string{"/http-bind", "/xmpp-websocket"} {
		if !paths[want] {
			t.Errorf("Ingress lacks %s", want)
		}
	}
	if host, tlsHost := digString(ing, "spec", "rules", 0, "host"), digString(ing, "spec", "tls", 0, "hosts", 0); host != tlsHost {
		t.Errorf("Ingress host %q differs from its TLS host %q", host, tlsHost)
	}
}

func digFloat(v any, path ...any) float64 {
	f, _ := dig(v, path...)
	n, _ := f.(float64)
	return n
}
