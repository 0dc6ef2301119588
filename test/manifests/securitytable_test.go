package manifests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// grant is one permission: a role's verbs on one resource (or non-resource URL), limited to
// some objects or not, and who holds the role.
type grant struct {
	holder, role, resource, verbs, only string
}

func (g grant) key() string { return g.role + " " + g.resource }

// shippedRBAC reads every role and binding in the RBAC files kustomize ships.
func shippedRBAC(t *testing.T) map[string]grant {
	t.Helper()
	var roles []rbacv1.ClusterRole // a Role's fields are a ClusterRole's, but for aggregation
	bound := map[string]string{}   // "Kind name" -> the ServiceAccount it is bound to
	// Every file config/rbac's kustomization ships, the webhook's roles, and the endpoints
	// identity's (config/endpoints: the consent server and receiver, issue 28 item 6).
	var k struct {
		Resources []string `json:"resources"`
	}
	read(t, "config/rbac/kustomization.yaml", &k)
	files := []string{"config/webhook/role.yaml"}
	for _, r := range k.Resources {
		files = append(files, "config/rbac/"+r)
	}
	var e struct {
		Resources []string `json:"resources"`
	}
	read(t, "config/endpoints/kustomization.yaml", &e)
	for _, r := range e.Resources {
		if r != "deployment.yaml" && r != "key.yaml" {
			files = append(files, "config/endpoints/"+r)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---\n") {
			var meta struct {
				Kind    string              `json:"kind"`
				RoleRef rbacv1.RoleRef      `json:"roleRef"`
				Subject []rbacv1.Subject    `json:"subjects"`
				Rules   []rbacv1.PolicyRule `json:"rules"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch meta.Kind {
			case "Role", "ClusterRole":
				var r rbacv1.ClusterRole
				if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				r.Kind = meta.Kind
				roles = append(roles, r)
			case "RoleBinding", "ClusterRoleBinding":
				holders := map[string]string{"controller-manager": "manager", "endpoints": "endpoints"}
				if len(meta.Subject) != 1 || meta.Subject[0].Kind != "ServiceAccount" || holders[meta.Subject[0].Name] == "" {
					t.Errorf("%s: %s binds %+v; the table knows only the manager's and the endpoints' ServiceAccounts", f, meta.Kind, meta.Subject)
					continue
				}
				bound[meta.RoleRef.Kind+" "+meta.RoleRef.Name] = holders[meta.Subject[0].Name]
			case "ServiceAccount", "":
			default:
				t.Errorf("%s: unexpected %s", f, meta.Kind)
			}
		}
	}
	if len(roles) < 9 {
		t.Fatalf("read only %d roles", len(roles))
	}
	out := map[string]grant{}
	for _, r := range roles {
		holder := bound[r.Kind+" "+r.Name]
		if holder == "" {
			holder = "people"
		}
		for _, rule := range r.Rules {
			verbs := slices.Clone(rule.Verbs)
			slices.Sort(verbs)
			only := slices.Clone(rule.ResourceNames)
			slices.Sort(only)
			var resources []string
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					if g != "" {
						res = g + "/" + res
					}
					resources = append(resources, res)
				}
			}
			resources = append(resources, rule.NonResourceURLs...)
			for _, res := range resources {
				g := grant{holder: holder, role: r.Kind + " " + r.Name, resource: res, verbs: strings.Join(verbs, ", "), only: strings.Join(only, ", ")}
				if prev, dup := out[g.key()]; dup {
					t.Errorf("%s: %s appears in two rules (%s; %s): the table could not say which", g.role, res, prev.verbs, g.verbs)
				}
				out[g.key()] = g
			}
		}
	}
	return out
}

var (
	roleCell = regexp.MustCompile("^(ClusterRole|Role) `([^`]+)`")
	backtick = regexp.MustCompile("`([^`]+)`")
)

// documentedRBAC reads the table in SECURITY.md's "What each identity may do".
func documentedRBAC(t *testing.T) map[string]grant {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]grant{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| manager |") && !strings.HasPrefix(line, "| endpoints |") && !strings.HasPrefix(line, "| people |") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		var role, resource []string
		if len(cells) == 6 {
			role = roleCell.FindStringSubmatch(cells[1])
			resource = backtick.FindStringSubmatch(cells[2])
		}
		if role == nil || resource == nil {
			t.Errorf("SECURITY.md: a table row this test cannot read: %s", line)
			continue
		}
		verbs := strings.Split(cells[3], ",")
		for i := range verbs {
			verbs[i] = strings.TrimSpace(verbs[i])
		}
		slices.Sort(verbs)
		var only []string
		for _, o := range backtick.FindAllStringSubmatch(cells[4], -1) {
			only = append(only, o[1])
		}
		slices.Sort(only)
		g := grant{holder: cells[0], role: role[1] + " " + role[2], resource: resource[1], verbs: strings.Join(verbs, ", "), only: strings.Join(only, ", ")}
		if _, dup := out[g.key()]; dup {
			t.Errorf("SECURITY.md: %s %s has two rows", g.role, g.resource)
		}
		out[g.key()] = g
	}
	if len(out) < 20 {
		t.Fatalf("SECURITY.md: read only %d rows of the identity table", len(out))
	}
	return out
}

// TestSecurityTableIsTheShippedRBAC: SECURITY.md's table of what each identity may do is
// exactly the RBAC grantkeeper ships, both ways (issue 28 item 6: it used to overstate and
// understate). Widening a role means changing the table in the same review.
func TestSecurityTableIsTheShippedRBAC(t *testing.T) {
	shipped, documented := shippedRBAC(t), documentedRBAC(t)
	for k, s := range shipped {
		d, ok := documented[k]
		switch {
		case !ok:
			t.Errorf("shipped but not in SECURITY.md's table: %s (%s) grants %s on %s", s.role, s.holder, s.verbs, s.resource)
		case d != s:
			t.Errorf("SECURITY.md says %+v; the shipped RBAC is %+v", d, s)
		}
	}
	for k, d := range documented {
		if _, ok := shipped[k]; !ok {
			t.Errorf("in SECURITY.md's table but not shipped: %s (%s) %s on %s", d.role, d.holder, d.verbs, d.resource)
		}
	}
}
