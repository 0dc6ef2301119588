// Package helm checks the chart in charts/grantkeeper without a cluster: helm lint, the
// values schema, and that the chart and `kustomize build config/default` agree on the CRD,
// the RBAC rules and the Deployment's security settings, flags and probes (one source of
// truth: the chart renders the CRD, the rules and the alerts from copies of config/ that
// `make manifests` refreshes, and this test fails when the copies or the rest drift).
package helm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/grantkeeper/grantkeeper/test/framework/helmbin"
	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
)

var root, helm, kubectl string

func TestMain(m *testing.M) {
	var err error
	if root, err = k8sbin.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir, err := k8sbin.Dir(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kubectl = filepath.Join(binDir, "kubectl")
	helm, err = helmbin.Find(root)
	if err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "helm:", err)
			os.Exit(1)
		}
		fmt.Println("helm: SKIPPING the chart tests:", err)
		os.Exit(0)
	}
	readInputs()
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

// readInputs reads every file helm, kustomize and make read here: go test caches a result by
// the files the test process opened, and those tools run in other processes.
func readInputs() {
	for _, dir := range []string{"charts", "config"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				_, _ = os.ReadFile(p)
			}
			return nil
		})
	}
	for _, f := range []string{"Makefile", "hack/helm-sync.sh"} {
		_, _ = os.ReadFile(filepath.Join(root, f))
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// objects parses a multi-document YAML stream, keyed by "Kind/namespace/name".
func objects(t *testing.T, stream string) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		out[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] = u
	}
	return out
}

func template(t *testing.T, args ...string) map[string]*unstructured.Unstructured {
	t.Helper()
	return objects(t, run(t, helm, append([]string{"template", "grantkeeper", "charts/grantkeeper", "--namespace", "grantkeeper-system"}, args...)...))
}

func TestLint(t *testing.T) {
	run(t, helm, "lint", "--strict", "charts/grantkeeper")
	run(t, helm, "lint", "--strict", "charts/grantkeeper", "--set", "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,watchNamespaces={a,b}")
}

// TestChartFilesAreCopiesOfConfig: the CRD, roles and alerts the chart renders are config/'s.
func TestChartFilesAreCopiesOfConfig(t *testing.T) {
	for chart, config := range map[string]string{
		"files/crd/googleoauthgrants.yaml":         "config/crd/bases/oauth.grantkeeper.dev_googleoauthgrants.yaml",
		"files/crd/googleoauthclients.yaml":        "config/crd/bases/oauth.grantkeeper.dev_googleoauthclients.yaml",
		"files/crd/clustergoogleoauthclients.yaml": "config/crd/bases/oauth.grantkeeper.dev_clustergoogleoauthclients.yaml",
		"files/crd/oauthgrants.yaml":               "config/crd/bases/oauth.grantkeeper.dev_oauthgrants.yaml",
		"files/crd/oauthclients.yaml":              "config/crd/bases/oauth.grantkeeper.dev_oauthclients.yaml",
		"files/crd/clusteroauthclients.yaml":       "config/crd/bases/oauth.grantkeeper.dev_clusteroauthclients.yaml",
		"files/prometheus/rules.yaml":              "config/prometheus/rules.yaml",
	} {
		same(t, filepath.Join("charts/grantkeeper", chart), config)
	}
	rbac, _ := filepath.Glob(filepath.Join(root, "charts/grantkeeper/files/rbac/*.yaml"))
	if len(rbac) < 6 {
		t.Fatalf("only %d role files in the chart", len(rbac))
	}
	for _, f := range rbac {
		src := filepath.Join("config/rbac", filepath.Base(f))
		if filepath.Base(f) == "endpoints_role.yaml" {
			src = "config/endpoints/role.yaml" // a component's, for the endpoints Deployment
		}
		same(t, filepath.Join("charts/grantkeeper/files/rbac", filepath.Base(f)), src)
	}
}

func same(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(filepath.Join(root, a))
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(filepath.Join(root, b))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s differs from %s: run make manifests (it copies config/ into the chart)", a, b)
	}
}

func field(t *testing.T, u *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if err != nil {
		t.Fatalf("%s %v: %v", u.GetName(), path, err)
	}
	return v
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestChartMatchesKustomize: with default values, `helm template` and `kustomize build
// config/default` produce the same CRD, RBAC and Deployment settings.
func TestChartMatchesKustomize(t *testing.T) {
	k := objects(t, run(t, kubectl, "kustomize", "config/default"))
	h := template(t)
	if compared := sameObjects(t, k, h); compared < 10 {
		t.Fatalf("compared only %d objects", compared)
	}
	if crd := h["CustomResourceDefinition//googleoauthgrants.oauth.grantkeeper.dev"]; crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("the CRD is not kept on uninstall by default")
	}
}

// TestChartMatchesKustomizeWithConsent: with consent links on (config/default with
// ../consent uncommented; consent.enabled in the chart), both ship the same endpoints
// Deployment, ServiceAccount, roles and key Secret, and the same manager (issue 28 item 6).
func TestChartMatchesKustomizeWithConsent(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "config"), os.DirFS(filepath.Join(root, "config"))); err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(dir, "config", "default", "kustomization.yaml")
	b, err := os.ReadFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	on := strings.Replace(string(b), "# components:\n# - ../consent", "components:\n- ../consent", 1)
	if on == string(b) {
		t.Fatal("config/default has no commented ../consent component to turn on")
	}
	if err := os.WriteFile(kf, []byte(on), 0o644); err != nil {
		t.Fatal(err)
	}
	k := objects(t, run(t, kubectl, "kustomize", filepath.Join(dir, "config", "default")))
	h := template(t, "--set", "consent.enabled=true,consent.baseURL=https://consent.example.com")
	for _, want := range []string{"Deployment/grantkeeper-system/grantkeeper-endpoints", "ServiceAccount/grantkeeper-system/grantkeeper-endpoints",
		"ClusterRole//grantkeeper-endpoints-role", "Secret/grantkeeper-system/grantkeeper-consent-key"} {
		if k[want] == nil {
			t.Errorf("kustomize with consent renders no %s", want)
		}
	}
	if compared := sameObjects(t, k, h); compared < 15 {
		t.Fatalf("compared only %d objects", compared)
	}
}

// sameObjects compares what kustomize (k) and the chart (h) render, both ways, and returns
// how many objects it compared.
func sameObjects(t *testing.T, k, h map[string]*unstructured.Unstructured) int {
	t.Helper()
	compared := 0
	for key, ko := range k {
		kind := ko.GetKind()
		ho := h[key]
		switch kind {
		case "Namespace":
			continue // helm install --create-namespace, or the user's own (see the README)
		case "CustomResourceDefinition", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", "ServiceAccount", "Deployment", "Service",
			"MutatingWebhookConfiguration", "Secret", "NetworkPolicy":
		default:
			t.Errorf("kustomize renders %s, which the comparison does not cover", key)
			continue
		}
		if ho == nil {
			t.Errorf("kustomize renders %s; the chart does not", key)
			continue
		}
		compared++
		var paths [][]string
		switch kind {
		case "CustomResourceDefinition":
			paths = [][]string{{"spec"}}
		case "ClusterRole", "Role":
			paths = [][]string{{"rules"}}
		case "ClusterRoleBinding", "RoleBinding":
			paths = [][]string{{"roleRef"}, {"subjects"}}
		case "Service", "NetworkPolicy":
			paths = [][]string{{"spec"}}
		case "MutatingWebhookConfiguration":
			paths = [][]string{{"webhooks"}}
		case "Secret":
			paths = [][]string{{"type"}}
		case "Deployment":
			paths = [][]string{{"spec", "replicas"}, {"spec", "selector"}, {"spec", "template", "spec", "securityContext"},
				{"spec", "template", "spec", "serviceAccountName"}, {"spec", "template", "spec", "terminationGracePeriodSeconds"},
				{"spec", "template", "spec", "volumes"}}
			kc := field(t, ko, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			hc := field(t, ho, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			// The sidecar's image tag follows each one's manager image tag (latest, the appVersion).
			for _, c := range []map[string]any{kc, hc} {
				for _, e := range c["env"].([]any) {
					if e := e.(map[string]any); e["name"] == "METADATA_SERVER_IMAGE" {
						e["value"] = strings.Split(e["value"].(string), ":")[0]
					}
				}
			}
			for _, f := range []string{"command", "args", "ports", "securityContext", "livenessProbe", "readinessProbe", "env", "resources", "volumeMounts"} {
				if !equalJSON(kc[f], hc[f]) {
					t.Errorf("Deployment container %s differs:\n kustomize: %v\n chart:     %v", f, kc[f], hc[f])
				}
			}
		}
		for _, p := range paths {
			if a, b := field(t, ko, p...), field(t, ho, p...); !equalJSON(a, b) {
				t.Errorf("%s %s differs:\n kustomize: %v\n chart:     %v", key, strings.Join(p, "."), a, b)
			}
		}
	}
	for key := range h {
		if k[key] == nil {
			t.Errorf("the chart renders %s; kustomize does not", key)
		}
	}
	return compared
}

// TestValues: the values a user tunes reach the Deployment and RBAC.
func TestValues(t *testing.T) {
	h := template(t, "--set", "watchNamespaces={team-a,team-b},maxConcurrentReconciles=16,kubeAPI.qps=50,kubeAPI.burst=100,replicaCount=3,priorityClassName=system-cluster-critical,image.tag=v9,crds.keep=false,leaderElection.enabled=false",
		"--set", "nodeSelector.disk=ssd,extraArgs={--token-request-timeout=10s}")
	d := h["Deployment/grantkeeper-system/grantkeeper-controller-manager"]
	args := fmt.Sprint(field(t, d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["args"])
	for _, want := range []string{"--namespaces=team-a,team-b", "--max-concurrent-reconciles=16", "--kube-api-qps=50", "--kube-api-burst=100", "--token-request-timeout=10s"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
	if strings.Contains(args, "--leader-elect") {
		t.Errorf("leaderElection.enabled=false still passes --leader-elect: %s", args)
	}
	if img := field(t, d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["image"]; img != "grantkeeper:v9" {
		t.Errorf("image %v", img)
	}
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{"spec", "replicas"}, "3"},
		{[]string{"spec", "template", "spec", "priorityClassName"}, "system-cluster-critical"},
		{[]string{"spec", "template", "spec", "nodeSelector", "disk"}, "ssd"},
	} {
		if got := fmt.Sprint(field(t, d, c.path...)); got != c.want {
			t.Errorf("%v = %v, want %v", c.path, got, c.want)
		}
	}
	// Watched namespaces: RoleBindings there, no ClusterRoleBinding to the manager role.
	if h["ClusterRoleBinding//grantkeeper-manager-rolebinding"] != nil {
		t.Errorf("watchNamespaces set, but the manager role is still bound cluster-wide")
	}
	for _, ns := range []string{"team-a", "team-b"} {
		if h["RoleBinding/"+ns+"/grantkeeper-manager-rolebinding"] == nil {
			t.Errorf("no RoleBinding in %s", ns)
		}
	}
	if crd := h["CustomResourceDefinition//googleoauthgrants.oauth.grantkeeper.dev"]; crd.GetAnnotations()["helm.sh/resource-policy"] == "keep" {
		t.Errorf("crds.keep=false still keeps the CRD")
	}
	if h := template(t, "--set", "crds.enabled=false"); h["CustomResourceDefinition//googleoauthgrants.oauth.grantkeeper.dev"] != nil {
		t.Errorf("crds.enabled=false still renders the CRD")
	}
	mon := template(t, "--set", "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true")
	if mon["ServiceMonitor/grantkeeper-system/grantkeeper-controller-manager-metrics-monitor"] == nil || mon["PrometheusRule/grantkeeper-system/grantkeeper-controller-manager-rules"] == nil {
		t.Errorf("the ServiceMonitor and PrometheusRule toggles render nothing")
	}
	rules := fmt.Sprint(field(t, mon["PrometheusRule/grantkeeper-system/grantkeeper-controller-manager-rules"], "spec"))
	if !strings.Contains(rules, "{{ $labels.namespace }}") {
		t.Errorf("the alerts' templates were not passed through to Prometheus: %.300s", rules)
	}
}

// TestSchemaRejectsBadValues: mistakes fail at install time with the value's name.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, set := range []string{"replicaCount=-1", "image.pullPolicy=Sometimes", "metrics.port=70000", "imagee.tag=x", "kubeAPI.qps=0", "extraArgs={leader-elect}", "watchNamespaces={Team_A}"} {
		out, err := runErr(helm, "template", "grantkeeper", "charts/grantkeeper", "--set", set)
		if err == nil {
			t.Errorf("--set %s was accepted", set)
			continue
		}
		key := strings.Split(strings.SplitN(set, "=", 2)[0], ".")
		if !strings.Contains(err.Error(), key[len(key)-1]) {
			t.Errorf("--set %s: the error does not name the value: %v %s", set, err, out)
		}
	}
}

// TestRelease: `make release` writes install.yaml (config/default with the image set, nothing
// else changed) and a chart package that renders like the chart directory.
func TestRelease(t *testing.T) {
	dist := t.TempDir()
	const img = "registry.example.com/grantkeeper:v9.9.9"
	const sidecar = "registry.example.com/grantkeeper-metadata-server:v9.9.9"
	run(t, "make", "-s", "release-manifests", "IMG="+img, "METADATA_IMG="+sidecar, "DIST="+dist)
	b, err := os.ReadFile(filepath.Join(dist, "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rel := objects(t, string(b))
	k := objects(t, run(t, kubectl, "kustomize", "config/default"))
	if len(rel) != len(k) {
		t.Errorf("install.yaml has %d objects, config/default %d", len(rel), len(k))
	}
	d := rel["Deployment/grantkeeper-system/grantkeeper-controller-manager"]
	if d == nil {
		t.Fatal("install.yaml has no manager Deployment")
	}
	c := field(t, d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	if c["image"] != img {
		t.Errorf("install.yaml runs image %v, want %s", c["image"], img)
	}
	kc := field(t, k["Deployment/grantkeeper-system/grantkeeper-controller-manager"], "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	c["image"] = kc["image"]
	for i, e := range c["env"].([]any) {
		if e := e.(map[string]any); e["name"] == "METADATA_SERVER_IMAGE" {
			if e["value"] != sidecar {
				t.Errorf("install.yaml injects sidecar image %v, want %s", e["value"], sidecar)
			}
			e["value"] = kc["env"].([]any)[i].(map[string]any)["value"]
		}
	}
	for key, o := range k {
		if !equalJSON(o.Object, rel[key].Object) {
			t.Errorf("install.yaml's %s differs from config/default's beyond the image", key)
		}
	}
	pkgs, _ := filepath.Glob(filepath.Join(dist, "grantkeeper-*.tgz"))
	if len(pkgs) != 1 {
		t.Fatalf("want one chart package, got %v", pkgs)
	}
	fromPkg := run(t, helm, "template", "grantkeeper", pkgs[0], "--namespace", "grantkeeper-system")
	fromDir := run(t, helm, "template", "grantkeeper", "charts/grantkeeper", "--namespace", "grantkeeper-system")
	if fromPkg != fromDir {
		t.Errorf("the packaged chart renders differently from charts/grantkeeper")
	}
}

// TestInjectionValues: the webhook's values reach the manager's flags and the webhook objects;
// cert-manager replaces the manager's own certificate; off means no webhook at all.
func TestInjectionValues(t *testing.T) {
	const mwc = "MutatingWebhookConfiguration//grantkeeper-mutating-webhook-configuration"
	container := func(h map[string]*unstructured.Unstructured) map[string]any {
		for k, o := range h {
			if strings.HasPrefix(k, "Deployment/") {
				return field(t, o, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			}
		}
		t.Fatal("no Deployment")
		return nil
	}
	h := template(t, "--set", "image.tag=v3,injection.failurePolicy=Fail,injection.excludeNamespaces={batch}")
	if env := fmt.Sprint(container(h)["env"]); !strings.Contains(env, "value:grantkeeper-metadata-server:v3") {
		t.Errorf("the sidecar image does not follow image.tag: %s", env)
	}
	wh := fmt.Sprint(field(t, h[mwc], "webhooks"))
	for _, want := range []string{"failurePolicy:Fail", "values:[kube-system grantkeeper-system batch]", "'oauth.grantkeeper.dev/inject' in object.metadata.annotations"} {
		if !strings.Contains(wh, want) {
			t.Errorf("webhook lacks %s: %s", want, wh)
		}
	}

	cm := template(t, "--set", "injection.certificates=cert-manager")
	if args := fmt.Sprint(container(cm)["args"]); !strings.Contains(args, "--webhook-self-signed=false") {
		t.Errorf("cert-manager mode still rotates its own certificate: %s", args)
	}
	if cm["Certificate/grantkeeper-system/grantkeeper-webhook-cert"] == nil || cm["Issuer/grantkeeper-system/grantkeeper-webhook-selfsigned"] == nil {
		t.Errorf("cert-manager mode renders no Certificate and Issuer")
	}
	if cm["Secret/grantkeeper-system/grantkeeper-webhook-server-cert"] != nil {
		t.Errorf("cert-manager mode still ships the empty Secret cert-manager should write")
	}
	if a := cm[mwc].GetAnnotations()["cert-manager.io/inject-ca-from"]; a != "grantkeeper-system/grantkeeper-webhook-cert" {
		t.Errorf("the webhook's CA injection annotation is %q", a)
	}

	other := objects(t, run(t, helm, "template", "gk", "charts/grantkeeper", "--namespace", "ops"))
	if args := fmt.Sprint(container(other)["args"]); !strings.Contains(args, "--webhook-service-name=gk-grantkeeper-webhook-service") ||
		!strings.Contains(args, "--webhook-cert-secret=gk-grantkeeper-webhook-server-cert") {
		t.Errorf("another release name does not reach the manager's webhook flags: %s", args)
	}

	off := template(t, "--set", "injection.enabled=false")
	if off[mwc] != nil || strings.Contains(fmt.Sprint(container(off)["args"]), "webhook") {
		t.Errorf("injection.enabled=false still renders the webhook")
	}
}
