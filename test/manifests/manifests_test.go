// Package manifests checks the shipped YAML: the ClusterRole grants nothing beyond what the
// controller needs, and the Deployment keeps its hardening.
package manifests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

func read(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestClusterRoleIsMinimal fails when a rule broader than the controller's needs appears.
// Widening it is a security decision: change this list in the same review.
func TestClusterRoleIsMinimal(t *testing.T) {
	allowed := map[string][]string{ // "group/resource" -> verbs
		"/secrets":             {"create", "get", "list", "update", "watch"},
		"events.k8s.io/events": {"create", "patch"},
		"oauth.grantkeeper.dev/googleoauthgrants":            {"get", "list", "patch", "watch"},
		"oauth.grantkeeper.dev/googleoauthgrants/finalizers": {"update"},
		"oauth.grantkeeper.dev/googleoauthgrants/status":     {"get", "patch"},
	}
	var role rbacv1.ClusterRole
	read(t, "config/rbac/role.yaml", &role)
	if len(role.Rules) == 0 {
		t.Fatal("no rules parsed")
	}
	for _, r := range role.Rules {
		if len(r.NonResourceURLs) > 0 || len(r.ResourceNames) > 0 {
			t.Errorf("unexpected rule shape: %+v", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				verbs, ok := allowed[g+"/"+res]
				if !ok || g == "*" || res == "*" {
					t.Errorf("ClusterRole grants access to %s/%s, which the controller does not need", g, res)
					continue
				}
				for _, v := range r.Verbs {
					if v == "*" || !slices.Contains(verbs, v) {
						t.Errorf("ClusterRole grants %q on %s/%s; allowed: %v", v, g, res, verbs)
					}
				}
			}
		}
	}
}

func TestDeploymentIsHardened(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "manager", "manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	for _, doc := range strings.Split(string(b), "\n---\n") {
		if strings.Contains(doc, "kind: Deployment") {
			if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
				t.Fatal(err)
			}
		}
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot:
		t.Error("pod must run as non-root")
	case pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("pod must use the RuntimeDefault seccomp profile")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container root filesystem must be read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation must be off")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Error("all capabilities must be dropped and none added")
	case c.LivenessProbe == nil || c.ReadinessProbe == nil:
		t.Error("liveness and readiness probes are required")
	case c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero():
		t.Error("memory requests and limits are required")
	case !slices.Contains(c.Args, "--leader-elect"):
		t.Error("leader election must be on")
	}
}
