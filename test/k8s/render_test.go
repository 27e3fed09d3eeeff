// Package k8s tests the Kubernetes manifests of docker/k8s with the programs and types that
// consume them: kubectl's kustomize renders each overlay offline, every object is decoded
// strictly into the real API types of k8s.io/api (an unknown or misspelt field is an error), the
// pod passes the "restricted" Pod Security level as k8s.io/pod-security-admission evaluates it,
// and (with -tags docker) each overlay's pod runs in the Docker engine the way the kubelet would
// run it. It is its own Go module so that the k8s.io modules stay out of the product's go.mod.
package k8s

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// overlays are the environments docker/k8s/overlays ships; each is rendered and checked.
var overlays = []string{"development", "staging", "production"}

// The names the manifests, the docs and the operators' commands share.
const (
	xmppService     = "prosody"          // c2s and s2s; the production LoadBalancer
	httpService     = "prosody-http"     // Prosody's plain HTTP port, for the Ingress only
	headlessService = "prosody-headless" // the StatefulSet's serviceName
	envConfigMap    = "prosody-env"      // hashed: an edit rolls the pod
	customConfigMap = "prosody-custom"   // not hashed: an edit is reloaded live
	dbSecret        = "prosody-db"       // created outside git (staging, production)
	tlsSecret       = "prosody-tls"      // created outside git or by cert-manager
	ingressNS       = "ingress-nginx"    // the ingress controller's namespace (NetworkPolicy)
	monitoringNS    = "monitoring"       // Prometheus' namespace (NetworkPolicy)
)

// containerPorts are the pod's named ports: the image's EXPOSE list and the defaults of the
// entrypoint's port settings.
var containerPorts = map[string]int32{"c2s": 5222, "s2s": 5269, "http": 5280, "https": 5281, "health": 5282}

// repoRoot is the repository root, found from this file's location.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// rendered is one overlay, decoded into the API types.
type rendered struct {
	overlay    string
	namespace  *corev1.Namespace
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	services   map[string]*corev1.Service
	sts        *appsv1.StatefulSet
	ingress    *networkingv1.Ingress
	policies   []*networkingv1.NetworkPolicy
}

// container is the pod's one container.
func (r *rendered) container() *corev1.Container { return &r.sts.Spec.Template.Spec.Containers[0] }

// envConfigMap is the ConfigMap the container's envFrom names.
func (r *rendered) envConfigMap(t testing.TB) *corev1.ConfigMap {
	t.Helper()
	c := r.container()
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil {
		t.Fatalf("%s: want envFrom with one configMapRef, got %+v", r.overlay, c.EnvFrom)
	}
	cm := r.configMaps[c.EnvFrom[0].ConfigMapRef.Name]
	if cm == nil {
		t.Fatalf("%s: envFrom names ConfigMap %q, which is not rendered", r.overlay, c.EnvFrom[0].ConfigMapRef.Name)
	}
	return cm
}

// render runs `kubectl kustomize` on an overlay and decodes every object strictly.
func render(t testing.TB, overlay string) *rendered {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl not found in PATH: install kubectl 1.27 or later (kustomize v5; scripts/install-deps test installs the \"kubectl\" package)")
	}
	cmd := exec.Command(kubectl, "kustomize", filepath.Join("docker", "k8s", "overlays", overlay))
	cmd.Dir = repoRoot(t)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize docker/k8s/overlays/%s: %v\n%s", overlay, err, stderr.String())
	}
	objs, err := decodeAll(out)
	if err != nil {
		t.Fatalf("overlay %s: %v", overlay, err)
	}
	r := &rendered{overlay: overlay, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{}}
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			if r.namespace != nil {
				t.Errorf("%s: a second Namespace %s", overlay, o.Name)
			}
			r.namespace = o
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *appsv1.StatefulSet:
			if r.sts != nil {
				t.Errorf("%s: a second StatefulSet %s", overlay, o.Name)
			}
			r.sts = o
		case *networkingv1.Ingress:
			if r.ingress != nil {
				t.Errorf("%s: a second Ingress %s", overlay, o.Name)
			}
			r.ingress = o
		case *networkingv1.NetworkPolicy:
			r.policies = append(r.policies, o)
		}
	}
	if r.namespace == nil || r.sts == nil || r.ingress == nil || len(r.sts.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: want a Namespace, a StatefulSet with one container and an Ingress", overlay)
	}
	return r
}

// kinds are the object kinds the overlays may hold, by apiVersion and kind, with the API type
// each decodes into. Not here on purpose: HorizontalPodAutoscaler (Prosody has no clustering)
// and PodDisruptionBudget (one replica: see docker/k8s/base/kustomization.yaml and
// docs/deployment.md).
var kinds = map[string]func() any{
	"v1/Namespace":                       func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"networking.k8s.io/v1/Ingress":       func() any { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
}

// decodeAll splits a YAML stream into documents and decodes each strictly into its API type:
// duplicate keys, unknown fields and fields in the wrong case are errors, as they are for an
// API server asked for strict field validation (kubectl apply --validate=strict).
func decodeAll(stream []byte) ([]any, error) {
	rd := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []any
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split YAML documents: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		o, err := decodeStrict(doc)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
}

func decodeStrict(doc []byte) (any, error) {
	j, err := sigsyaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("YAML to JSON: %w", err)
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("object of kind %q (apiVersion %q) is not one the manifests ship (see the kinds table; no HPA, no PodDisruptionBudget: docs/deployment.md says why)", tm.Kind, tm.APIVersion)
	}
	obj := newObj()
	strict, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", tm.Kind, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strict...))
	}
	return obj, nil
}

// The strict decoder is what makes a drifted field fail: it must refuse a misspelt field, a
// field in the wrong case, a field at the wrong level and a duplicate key.
func TestStrictDecodeRefusesDrift(t *testing.T) {
	const good = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n  - port: 5222\n"
	if _, err := decodeStrict([]byte(good)); err != nil {
		t.Fatalf("a valid Service: %v", err)
	}
	for name, doc := range map[string]string{
		"misspelt":     "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n  - prot: 5222\n",
		"wrong case":   "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n  - Port: 5222\n",
		"wrong level":  "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nports:\n- port: 5222\n",
		"duplicate":    "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  name: y\n",
		"unknown kind": "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: x\n",
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestOverlays renders every overlay and checks what an operator and the cluster rely on.
func TestOverlays(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			t.Parallel()
			r := render(t, o)
			checkNamespaces(t, r)
			checkPod(t, r)
			checkPodSecurity(t, r)
			checkStorageAndCertificates(t, r)
			checkServices(t, r)
			checkIngress(t, r)
			checkNetworkPolicy(t, r)
		})
	}
}

func checkNamespaces(t *testing.T, r *rendered) {
	ns := r.namespace.Name
	objs := []metav1.Object{r.sts, r.ingress}
	for _, cm := range r.configMaps {
		objs = append(objs, cm)
	}
	for _, s := range r.secrets {
		objs = append(objs, s)
	}
	for _, s := range r.services {
		objs = append(objs, s)
	}
	for _, p := range r.policies {
		objs = append(objs, p)
	}
	for _, o := range objs {
		if o.GetNamespace() != ns {
			t.Errorf("%s is in namespace %q, the overlay's Namespace is %q", o.GetName(), o.GetNamespace(), ns)
		}
	}
	if got := r.namespace.Labels[psapi.EnforceLevelLabel]; got != string(psapi.LevelRestricted) {
		t.Errorf("Namespace %s: label %s = %q, want %q", ns, psapi.EnforceLevelLabel, got, psapi.LevelRestricted)
	}
}

func checkPod(t *testing.T, r *rendered) {
	spec := r.sts.Spec
	if spec.Replicas == nil || *spec.Replicas != 1 {
		t.Errorf("replicas = %v: Prosody has no clustering, the StatefulSet runs exactly one server", spec.Replicas)
	}
	if spec.ServiceName != headlessService || r.services[headlessService] == nil {
		t.Errorf("serviceName = %q; want the rendered headless Service %q", spec.ServiceName, headlessService)
	}
	pod := spec.Template
	sel, err := metav1.LabelSelectorAsSelector(spec.Selector)
	if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("selector %v does not select the pod template's labels %v (%v)", spec.Selector, pod.Labels, err)
	}
	ps := pod.Spec
	// Service links: see the comment in base/statefulset.yaml and TestPodServiceLinksStopTheEntrypoint.
	if ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		t.Error("enableServiceLinks must be false: the kubelet would inject PROSODY_PORT and friends for the Service \"prosody\", and the entrypoint exits 78 on unknown PROSODY_* variables")
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false: the server never talks to the API")
	}
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsUser == nil || *ps.SecurityContext.RunAsUser != 101 ||
		ps.SecurityContext.FSGroup == nil || *ps.SecurityContext.FSGroup != 101 {
		t.Errorf("pod securityContext %+v: want runAsUser and fsGroup 101 (the image's prosody user)", ps.SecurityContext)
	}
	c := r.container()
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if !maps.Equal(ports, containerPorts) {
		t.Errorf("container ports %v, want %v", ports, containerPorts)
	}
	for name, want := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"startupProbe": {c.StartupProbe, "/readyz"}, "livenessProbe": {c.LivenessProbe, "/livez"}, "readinessProbe": {c.ReadinessProbe, "/readyz"}} {
		if want.probe == nil || want.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", name)
			continue
		}
		if g := want.probe.HTTPGet; g.Path != want.path || g.Port != intstr.FromString("health") {
			t.Errorf("%s: httpGet %s on port %s, want %s on the named port health", name, g.Path, g.Port.String(), want.path)
		}
	}
	if ps.TerminationGracePeriodSeconds == nil || *ps.TerminationGracePeriodSeconds <= 10 {
		t.Errorf("terminationGracePeriodSeconds %v: want more than PROSODY_STOP_TIMEOUT's 10 s", ps.TerminationGracePeriodSeconds)
	}
	// Every mount names a volume or a claim; the data directory is on the claim.
	vols := volumes(r)
	claims := map[string]bool{}
	for _, c := range spec.VolumeClaimTemplates {
		claims[c.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if vols[m.Name] == nil && !claims[m.Name] {
			t.Errorf("volumeMount %s (%s) names no volume or claim", m.Name, m.MountPath)
		}
	}
	if !claims[mountAt(t, r, "/var/lib/prosody").Name] {
		t.Error("/var/lib/prosody must be on the volume claim")
	}
	// The pod runs as uid 101 without root: the entrypoint sets the data directory's mode, which
	// it can only do on a directory it made, not on the root of the claim (root's, group fsGroup).
	if d := r.envConfigMap(t).Data["PROSODY_DATA_DIR"]; filepath.Dir(d) != "/var/lib/prosody" {
		t.Errorf("PROSODY_DATA_DIR = %q: want a directory inside the claim mounted at /var/lib/prosody", d)
	}
	for _, dir := range []string{"/run", "/tmp"} {
		if v := vols[mountAt(t, r, dir).Name]; v == nil || v.EmptyDir == nil {
			t.Errorf("%s must be an emptyDir (the root filesystem is read-only)", dir)
		}
	}
	// The custom tree comes from prosody-custom under its own name: kustomize's hash suffix
	// would roll the pod on every edit instead of the promised live reload.
	custom := vols[mountAt(t, r, "/etc/prosody-pfe/custom").Name]
	cm := r.configMaps[customConfigMap]
	switch {
	case custom == nil || custom.ConfigMap == nil || custom.ConfigMap.Name != customConfigMap:
		t.Errorf("/etc/prosody-pfe/custom: want the ConfigMap %q itself (no hash suffix), got %+v", customConfigMap, custom)
	case cm == nil:
		t.Errorf("ConfigMap %s is not rendered (a hash suffix?)", customConfigMap)
	default:
		for _, it := range custom.ConfigMap.Items {
			if _, ok := cm.Data[it.Key]; !ok {
				t.Errorf("ConfigMap %s has no key %s", customConfigMap, it.Key)
			}
		}
	}
	// The env ConfigMap keeps its hash: env is read at start, so an edit must roll the pod.
	if env := r.envConfigMap(t); !regexp.MustCompile(`^` + envConfigMap + `-[a-z0-9]{10}$`).MatchString(env.Name) {
		t.Errorf("envFrom ConfigMap %q: want %s with kustomize's hash suffix, so that an edit rolls the pod", env.Name, envConfigMap)
	}
}

// checkPodSecurity evaluates the pod template against the "restricted" Pod Security Standard
// with the admission plugin's own checks, at the latest policy version, as the Namespace label
// enforces it. The pod runs as uid 101 from the start (runAsNonRoot): the image's root-then-drop
// path (root prepares the volumes, then runs Prosody as 101) is for plain Docker, not used here.
func checkPodSecurity(t *testing.T, r *rendered) {
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("pod security evaluator: %v", err)
	}
	lv := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	res := policy.AggregateCheckResults(ev.EvaluatePod(lv, &r.sts.Spec.Template.ObjectMeta, &r.sts.Spec.Template.Spec))
	if !res.Allowed {
		t.Errorf("the pod violates Pod Security %q: %s: %s", lv.Level, res.ForbiddenReason(), res.ForbiddenDetail())
	}
}

// checkStorageAndCertificates: development is self-contained (SQLite, generated self-signed
// certificates); staging and production use PostgreSQL with the password from the Secret
// prosody-db and the certificates of the TLS Secret prosody-tls, neither shipped in git.
func checkStorageAndCertificates(t *testing.T, r *rendered) {
	env := r.envConfigMap(t).Data
	vols := volumes(r)
	certs := vols[mountAt(t, r, "/etc/prosody/certs").Name]
	if len(r.secrets) > 0 {
		t.Errorf("%s renders Secrets %v: passwords and keys are created outside git", r.overlay, slices.Collect(maps.Keys(r.secrets)))
	}
	if r.overlay == "development" {
		if env["PROSODY_STORAGE"] != "sqlite" || env["PROSODY_DB_HOST"] != "" {
			t.Errorf("development: PROSODY_STORAGE=%q, PROSODY_DB_HOST=%q: want sqlite, no database server (none is shipped)", env["PROSODY_STORAGE"], env["PROSODY_DB_HOST"])
		}
		if env["PROSODY_ENVIRONMENT"] != "development" || certs == nil || certs.EmptyDir == nil {
			t.Errorf("development: want the development environment (it generates self-signed certificates) and an emptyDir for them")
		}
		return
	}
	if env["PROSODY_STORAGE"] != "postgres" || env["PROSODY_DB_HOST"] == "" {
		t.Errorf("%s: PROSODY_STORAGE=%q, PROSODY_DB_HOST=%q: want postgres and a host", r.overlay, env["PROSODY_STORAGE"], env["PROSODY_DB_HOST"])
	}
	var pwFile string
	for _, e := range r.container().Env {
		if e.Name == "PROSODY_DB_PASSWORD_FILE" {
			pwFile = e.Value
		}
	}
	m := mountAt(t, r, filepath.Dir(pwFile))
	if v := vols[m.Name]; v == nil || v.Secret == nil || v.Secret.SecretName != dbSecret || filepath.Base(pwFile) != "password" {
		t.Errorf("%s: PROSODY_DB_PASSWORD_FILE=%q is not the key password of the mounted Secret %s", r.overlay, pwFile, dbSecret)
	}
	if certs == nil || certs.Secret == nil || certs.Secret.SecretName != tlsSecret || len(certs.Secret.Items) != 0 {
		t.Errorf("%s: /etc/prosody/certs: want the whole TLS Secret %s (tls.crt and tls.key), got %+v", r.overlay, tlsSecret, certs)
	}
}

func checkServices(t *testing.T, r *rendered) {
	want := map[string][]string{xmppService: {"c2s", "s2s"}, httpService: {"http"}, headlessService: {"c2s", "health"}}
	if len(r.services) != len(want) {
		t.Errorf("Services %v, want %v", slices.Collect(maps.Keys(r.services)), slices.Collect(maps.Keys(want)))
	}
	pod := labels.Set(r.sts.Spec.Template.Labels)
	for name, targets := range want {
		s := r.services[name]
		if s == nil {
			t.Errorf("Service %s is not rendered", name)
			continue
		}
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(pod) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s: selector %v does not select the pod %v", name, s.Spec.Selector, pod)
		}
		var got []string
		for _, p := range s.Spec.Ports {
			got = append(got, p.TargetPort.String())
			if cp, ok := containerPorts[p.TargetPort.String()]; !ok || p.Port != cp || p.Name != p.TargetPort.String() {
				t.Errorf("Service %s port %s: %d -> %s: want a named container port on its own number", name, p.Name, p.Port, p.TargetPort.String())
			}
		}
		if !slices.Equal(got, targets) {
			t.Errorf("Service %s targets %v, want %v", name, got, targets)
		}
		// Only the XMPP ports leave the cluster: plain HTTP, Prosody's HTTPS and the
		// entrypoint's /status and /metrics never go on a LoadBalancer or a NodePort.
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort {
			for _, p := range s.Spec.Ports {
				if t2 := p.TargetPort.String(); t2 != "c2s" && t2 != "s2s" || p.Port == 5280 || p.Port == 5281 || p.Port == 5282 {
					t.Errorf("%s Service %s publishes port %d (%s): only c2s and s2s belong there; HTTP goes through the Ingress", s.Spec.Type, name, p.Port, t2)
				}
			}
		}
	}
	if r.overlay == "production" {
		if s := r.services[xmppService]; s == nil || s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			t.Errorf("production: Service %s must be a LoadBalancer (c2s and s2s are TCP; no Ingress carries them)", xmppService)
		}
	}
}

func checkIngress(t *testing.T, r *rendered) {
	ing := r.ingress
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].HTTP == nil || len(ing.Spec.TLS) != 1 || len(ing.Spec.TLS[0].Hosts) != 1 {
		t.Fatalf("Ingress: want one rule with HTTP paths and one TLS entry, got %+v", ing.Spec)
	}
	rule := ing.Spec.Rules[0]
	if rule.Host != ing.Spec.TLS[0].Hosts[0] || rule.Host != r.envConfigMap(t).Data["PROSODY_DOMAIN"] {
		t.Errorf("Ingress host %q, TLS host %q, PROSODY_DOMAIN %q: want one name", rule.Host, ing.Spec.TLS[0].Hosts[0], r.envConfigMap(t).Data["PROSODY_DOMAIN"])
	}
	if ing.Spec.TLS[0].SecretName != tlsSecret {
		t.Errorf("Ingress TLS Secret %q, want %q", ing.Spec.TLS[0].SecretName, tlsSecret)
	}
	var paths []string
	for _, p := range rule.HTTP.Paths {
		paths = append(paths, p.Path)
		b := p.Backend.Service
		if b == nil || b.Name != httpService || b.Port.Name != "http" {
			t.Errorf("Ingress path %s: backend %+v, want Service %s port http", p.Path, p.Backend, httpService)
		}
	}
	if !slices.Equal(paths, []string{"/http-bind", "/xmpp-websocket"}) {
		t.Errorf("Ingress paths %v, want /http-bind and /xmpp-websocket", paths)
	}
}

// checkNetworkPolicy resolves, for each container port, who the policies let in: c2s and s2s
// from anywhere, HTTP only from the ingress controller's namespace, the health port (/status,
// /metrics) only from the monitoring namespace, Prosody's HTTPS from nobody.
func checkNetworkPolicy(t *testing.T, r *rendered) {
	pod := labels.Set(r.sts.Spec.Template.Labels)
	allowed := map[string][]string{} // container port name -> peers
	selecting := 0
	for _, np := range r.policies {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || sel.Empty() || !sel.Matches(pod) {
			continue
		}
		selecting++
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("NetworkPolicy %s: policyTypes %v lacks Ingress", np.Name, np.Spec.PolicyTypes)
		}
		for i, rule := range np.Spec.Ingress {
			if len(rule.Ports) == 0 {
				t.Errorf("NetworkPolicy %s rule %d admits every port", np.Name, i)
			}
			peers := []string{"anywhere"}
			if len(rule.From) > 0 {
				peers = nil
				for _, f := range rule.From {
					if f.PodSelector != nil || f.IPBlock != nil || f.NamespaceSelector == nil || len(f.NamespaceSelector.MatchExpressions) > 0 || len(f.NamespaceSelector.MatchLabels) != 1 {
						t.Errorf("NetworkPolicy %s rule %d: peer %+v: want a namespace selected by kubernetes.io/metadata.name", np.Name, i, f)
						continue
					}
					peers = append(peers, "namespace "+f.NamespaceSelector.MatchLabels[corev1.LabelMetadataName])
				}
			}
			for _, p := range rule.Ports {
				if p.Port == nil || p.Port.Type != intstr.String || p.EndPort != nil {
					t.Errorf("NetworkPolicy %s rule %d: port %v: want a named container port", np.Name, i, p.Port)
					continue
				}
				if _, ok := containerPorts[p.Port.StrVal]; !ok {
					t.Errorf("NetworkPolicy %s rule %d names port %q, which the container does not have", np.Name, i, p.Port.StrVal)
				}
				allowed[p.Port.StrVal] = append(allowed[p.Port.StrVal], peers...)
			}
		}
	}
	if selecting == 0 {
		t.Fatalf("no NetworkPolicy selects the pod %v: every port is open to the whole cluster", pod)
	}
	want := map[string][]string{
		"c2s":    {"anywhere"},
		"s2s":    {"anywhere"},
		"http":   {"namespace " + ingressNS},
		"health": {"namespace " + monitoringNS},
	}
	for name := range containerPorts {
		if !slices.Equal(allowed[name], want[name]) {
			t.Errorf("NetworkPolicy admits %v to port %s (%d), want %v", allowed[name], name, containerPorts[name], want[name])
		}
	}
}

// volumes indexes the pod's volumes by name.
func volumes(r *rendered) map[string]*corev1.Volume {
	m := map[string]*corev1.Volume{}
	for i := range r.sts.Spec.Template.Spec.Volumes {
		v := &r.sts.Spec.Template.Spec.Volumes[i]
		m[v.Name] = v
	}
	return m
}

// mountAt is the container's mount at path; the test fails without one.
func mountAt(t testing.TB, r *rendered, path string) corev1.VolumeMount {
	t.Helper()
	for _, m := range r.container().VolumeMounts {
		if m.MountPath == path {
			return m
		}
	}
	t.Fatalf("%s: nothing is mounted at %s", r.overlay, path)
	return corev1.VolumeMount{}
}
