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
		"oauth.grantkeeper.dev/googleoauthgrants/status":     {"get", "patch", "update"}, // an update at the cached version, a patch on conflict (issue 34)
		// OAuthGrants: the same reconciler, the same needs (issue 30).
		"oauth.grantkeeper.dev/oauthgrants":            {"get", "list", "patch", "watch"},
		"oauth.grantkeeper.dev/oauthgrants/finalizers": {"update"},
		"oauth.grantkeeper.dev/oauthgrants/status":     {"get", "patch", "update"},
		// Shared OAuth clients: read, and their status (Ready, client id) written.
		"oauth.grantkeeper.dev/googleoauthclients":               {"get", "list", "watch"},
		"oauth.grantkeeper.dev/googleoauthclients/status":        {"get", "patch"},
		"oauth.grantkeeper.dev/clustergoogleoauthclients":        {"get", "list", "watch"},
		"oauth.grantkeeper.dev/clustergoogleoauthclients/status": {"get", "patch"},
		// The clients of any provider (controllers/provider): read, status written.
		"oauth.grantkeeper.dev/oauthclients":               {"get", "list", "watch"},
		"oauth.grantkeeper.dev/oauthclients/status":        {"get", "patch"},
		"oauth.grantkeeper.dev/clusteroauthclients":        {"get", "list", "watch"},
		"oauth.grantkeeper.dev/clusteroauthclients/status": {"get", "patch"},
		// Namespace labels, for ClusterGoogleOAuthClient's namespaceSelector.
		"/namespaces": {"get", "list", "watch"},
	}
	// Writes that must name their one object (none here: the webhook's are in
	// config/webhook/role.yaml, TestWebhookRoleNamesItsObjects).
	named := map[string][]string{}
	var role rbacv1.ClusterRole
	read(t, "config/rbac/role.yaml", &role)
	if len(role.Rules) == 0 {
		t.Fatal("no rules parsed")
	}
	for _, r := range role.Rules {
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("unexpected rule shape: %+v", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				if names, ok := named[g+"/"+res]; ok && (slices.Contains(r.Verbs, "update") || slices.Contains(r.Verbs, "patch")) && !slices.Equal(r.ResourceNames, names) {
					t.Errorf("writes to %s/%s must be limited to %v: %+v", g, res, names, r)
				}
				if _, ok := named[g+"/"+res]; !ok && len(r.ResourceNames) > 0 {
					t.Errorf("unexpected rule shape: %+v", r)
				}
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

// TestWebhookRoleNamesItsObjects: the injection webhook may touch its one configuration and
// its one certificate Secret, by name, and nothing else (issue 32: a namespaced install binds
// these too, so they must be no wider than the webhook's needs).
func TestWebhookRoleNamesItsObjects(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "webhook", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]rbacv1.PolicyRule{
		"ClusterRole/webhook-role": {APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
			ResourceNames: []string{"grantkeeper-mutating-webhook-configuration"}, Verbs: []string{"get", "list", "watch", "update"}},
		"Role/webhook-cert-role": {APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: []string{"grantkeeper-webhook-server-cert"}, Verbs: []string{"get", "list", "watch", "update"}},
	}
	seen := 0
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var role rbacv1.Role // a ClusterRole's fields are a Role's
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		if role.Kind != "Role" && role.Kind != "ClusterRole" {
			continue
		}
		seen++
		w, ok := want[role.Kind+"/"+role.Name]
		if !ok || len(role.Rules) != 1 {
			t.Errorf("unexpected %s %s: %+v", role.Kind, role.Name, role.Rules)
			continue
		}
		r := role.Rules[0]
		if !slices.Equal(r.APIGroups, w.APIGroups) || !slices.Equal(r.Resources, w.Resources) || !slices.Equal(r.ResourceNames, w.ResourceNames) || !slices.Equal(r.Verbs, w.Verbs) {
			t.Errorf("%s %s grants %+v, want %+v", role.Kind, role.Name, r, w)
		}
	}
	if seen != len(want) {
		t.Errorf("%d roles in config/webhook/role.yaml, want %d", seen, len(want))
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

// TestClientRoles: namespace users (the aggregated edit and view roles) get the namespaced
// GoogleOAuthClient but never the cluster-scoped kind, which has its own, unaggregated
// admin role.
func TestClientRoles(t *testing.T) {
	resources := func(path string) (map[string][]string, map[string]string) {
		var role rbacv1.ClusterRole
		read(t, path, &role)
		out := map[string][]string{}
		for _, r := range role.Rules {
			for _, res := range r.Resources {
				out[res] = append(out[res], r.Verbs...)
			}
		}
		return out, role.Labels
	}
	for _, path := range []string{"config/rbac/googleoauthgrant_editor_role.yaml", "config/rbac/googleoauthgrant_viewer_role.yaml"} {
		got, _ := resources(path)
		for _, res := range []string{"googleoauthclients", "googleoauthgrants", "oauthclients", "oauthgrants"} {
			if !slices.Contains(got[res], "get") || !slices.Contains(got[res], "list") {
				t.Errorf("%s: no read access to %s: %v", path, res, got)
			}
		}
		for _, res := range []string{"clustergoogleoauthclients", "clusteroauthclients"} {
			if _, ok := got[res]; ok {
				t.Errorf("%s: grants access to %s to namespace users", path, res)
			}
		}
	}
	got, labels := resources("config/rbac/clustergoogleoauthclient_admin_role.yaml")
	for _, res := range []string{"clustergoogleoauthclients", "clusteroauthclients"} {
		for _, v := range []string{"create", "update", "delete"} {
			if !slices.Contains(got[res], v) {
				t.Errorf("admin role lacks %q on %s", v, res)
			}
		}
	}
	for k := range labels {
		if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
			t.Errorf("the cluster client admin role is aggregated (%s): namespace users would get it", k)
		}
	}
}
