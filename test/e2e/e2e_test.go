// Package e2e drives grantkeeper the way a user does: the manifests in config/, the real
// kubectl, the RBAC we ship (the manager authenticates as its ServiceAccount, not as an
// admin), a real kube-controller-manager for garbage collection, and `make demo` (demo_test.go).
package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"

	"golang.org/x/oauth2"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/leakcheck"
)

var (
	stack   *devstack.Stack
	root    string
	binDir  string
	workDir string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if root, err = k8sbin.RepoRoot(); err == nil {
		binDir, err = k8sbin.Dir(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if workDir, err = os.MkdirTemp("", "grantkeeper-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	for _, b := range []struct{ out, pkg string }{{"manager", "./cmd/manager"}, {"plugins/kubectl-grantkeeper", "./cmd/kubectl-grantkeeper"}} {
		if err := gobuild.Build(root, b.pkg, filepath.Join(workDir, b.out)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	stack, err = devstack.Up(devstack.Options{Root: root, Dir: filepath.Join(workDir, "stack"), BinDir: binDir, ManagerBin: filepath.Join(workDir, "manager")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	stack.StopManager()
	if code == 0 && !managerLogClean() {
		code = 1
	}
	if code != 0 {
		log, _ := os.ReadFile(stack.ManagerLog)
		fmt.Fprintf(os.Stderr, "--- manager log ---\n%s\n", log)
	}
	stack.Down()
	return code
}

// managerLogClean: over the whole suite, the manager logged no token or client secret.
func managerLogClean() bool {
	log, err := os.ReadFile(stack.ManagerLog)
	if err != nil || len(log) == 0 {
		fmt.Fprintln(os.Stderr, "e2e: no manager log to check:", err)
		return false
	}
	secrets := append(stack.Google.RefreshTokens(), stack.Google.IssuedAccessTokens()...)
	secrets = append(secrets, devstack.SampleClientSecret)
	secrets = append(secrets, stack.Google.PrivateKeys()...)
	if leakcheck.HasPEMBlock(string(log)) {
		fmt.Fprintln(os.Stderr, "e2e: the manager log contains a PEM block (a private key)")
		return false
	}
	if found := leakcheck.Find(string(log), secrets); len(found) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: the manager log contains tokens or client secrets (whole or a %d-character slice): %v\n", leakcheck.SliceLen, found)
		return false
	}
	fmt.Printf("e2e: manager log (%d bytes) checked for %d tokens and secrets: none found\n", len(log), len(secrets))
	return true
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return stack.MustRun(t, args...)
}

func kubectlStdin(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	return stack.RunInput(stdin, args...)
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	kubectl(t, "create", "namespace", name)
	return name
}

func TestApplyConfigDefault(t *testing.T) {
	dir := filepath.Join(root, "config", "default")
	out := kubectl(t, "apply", "--server-side", "--dry-run=server", "-k", dir)
	if !strings.Contains(out, "deployment.apps/grantkeeper-controller-manager serverside-applied (server dry run)") {
		t.Errorf("server-side dry run output:\n%s", out)
	}
	out = kubectl(t, "apply", "--server-side", "-k", dir)
	for _, want := range []string{"namespace/grantkeeper-system", "serviceaccount/grantkeeper-controller-manager", "clusterrole.rbac.authorization.k8s.io/grantkeeper-manager-role", "customresourcedefinition.apiextensions.k8s.io/googleoauthgrants.oauth.grantkeeper.dev"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply -k config/default did not mention %s:\n%s", want, out)
		}
	}
}

func TestInvalidManifestsRejected(t *testing.T) {
	for _, tc := range []struct{ name, spec, want string }{
		{"missing refresh token reference", `clientSecretRef: {name: c}`, "spec.refreshTokenSecretRef is required"},
		{"negative refreshBefore", "clientSecretRef: {name: c}\n  refreshTokenSecretRef: {name: r}\n  refreshBefore: -5m", "refreshBefore must be a positive duration"},
		{"unknown deletionPolicy", "clientSecretRef: {name: c}\n  refreshTokenSecretRef: {name: r}\n  deletionPolicy: Delete", `spec.deletionPolicy: Unsupported value: "Delete"`},
		{"clientRef and clientSecretRef", "clientSecretRef: {name: c}\n  clientRef: {name: shared}\n  refreshTokenSecretRef: {name: r}", "set exactly one of spec.clientSecretRef, spec.clientRef and spec.authorizedUserSecretRef"},
		{"clientRef of an unknown kind", "clientRef: {kind: Issuer, name: shared}\n  refreshTokenSecretRef: {name: r}", `spec.clientRef.kind: Unsupported value: "Issuer"`},
		{"clientRef with an empty name", "clientRef: {name: \"\"}\n  refreshTokenSecretRef: {name: r}", "spec.clientRef.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest := "apiVersion: oauth.grantkeeper.dev/v1alpha1\nkind: GoogleOAuthGrant\nmetadata: {name: bad, namespace: default}\nspec:\n  " + tc.spec + "\n"
			out, err := kubectlStdin(t, manifest, "apply", "-f", "-")
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("kubectl apply: err=%v, want a rejection naming %q; output:\n%s", err, tc.want, out)
			}
		})
	}
}

// TestSampleAsAUserWouldUseIt: the sample, kubectl wait, get, describe and explain, a
// consumer calling an API with the derived Secret, revocation, and garbage collection.
func TestSampleAsAUserWouldUseIt(t *testing.T) {
	ns := namespace(t, "sample")
	kubectl(t, "apply", "-n", ns, "-k", filepath.Join(root, "config", "samples"))
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "googleoauthgrant/analytics")

	table := kubectl(t, "get", "gog", "-n", ns)
	header, row, _ := strings.Cut(table, "\n")
	for _, col := range []string{"NAME", "READY", "REASON", "EXPIRES", "AGE"} {
		if !strings.Contains(header, col) {
			t.Errorf("kubectl get gog has no %s column:\n%s", col, table)
		}
	}
	expires := kubectl(t, "get", "gog", "-n", ns, "analytics", "-o", "jsonpath={.status.expiresAt}")
	if !strings.Contains(row, "True") || !strings.Contains(row, "TokenValid") || expires == "" || !strings.Contains(row, expires) {
		t.Errorf("kubectl get gog row: %s", row)
	}
	if all := kubectl(t, "get", "grantkeeper", "-A"); !strings.Contains(all, "analytics") {
		t.Errorf("the grantkeeper category does not list the grant:\n%s", all)
	}

	explain := kubectl(t, "explain", "googleoauthgrant.spec")
	for _, field := range []string{"clientSecretRef", "refreshTokenSecretRef", "scopes", "accessTokenSecretName", "refreshBefore", "deletionPolicy"} {
		i := strings.Index(explain, "\n  "+field+"\t")
		if i < 0 {
			t.Errorf("kubectl explain lacks %s", field)
			continue
		}
		if desc := strings.TrimSpace(strings.SplitN(explain[i+1:], "\n", 3)[1]); len(desc) < 20 {
			t.Errorf("kubectl explain has no useful description for %s: %q", field, desc)
		}
	}

	// A consumer, as a pod with the Secret mounted would: read access_token / token.json and call the API.
	accessToken := secretKey(t, ns, "analytics-access-token", "access_token")
	var tok oauth2.Token
	if err := json.Unmarshal([]byte(secretKey(t, ns, "analytics-access-token", "token.json")), &tok); err != nil || tok.AccessToken != accessToken {
		t.Fatalf("token.json does not load as an oauth2.Token holding access_token: %v", err)
	}
	if code := callAPI(t, accessToken); code != http.StatusOK {
		t.Errorf("API call with the derived token: HTTP %d", code)
	}
	if code := callAPI(t, "ya29.not-a-real-token"); code != http.StatusUnauthorized {
		t.Errorf("API call with a bogus token: HTTP %d, want 401 (the fake must validate)", code)
	}

	// Revocation, seen through kubectl wait and describe.
	resp, err := http.PostForm(stack.Google.RevokeURL(), url.Values{"token": {devstack.SampleRefreshToken}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke at the fake: %v %v", err, resp)
	}
	resp.Body.Close()
	kubectl(t, "annotate", "-n", ns, "gog/analytics", "--overwrite", "oauth.grantkeeper.dev/refresh-requested-at="+time.Now().UTC().Format(time.RFC3339))
	kubectl(t, "wait", "-n", ns, "--for=condition=Revoked", "--timeout=60s", "gog/analytics")
	describe := kubectl(t, "describe", "gog", "-n", ns, "analytics")
	for _, want := range []string{"TokenIssued", "InvalidGrant", "Token has been expired or revoked."} {
		if !strings.Contains(describe, want) {
			t.Errorf("kubectl describe lacks %q:\n%s", want, describe)
		}
	}

	// Deleting the grant garbage-collects the derived Secret (kube-controller-manager runs).
	kubectl(t, "delete", "-n", ns, "gog/analytics", "--wait=true")
	kubectl(t, "wait", "-n", ns, "--for=delete", "--timeout=60s", "secret/analytics-access-token")
	if out := kubectl(t, "get", "secret", "-n", ns, "analytics-refresh-token", "google-oauth-client", "-o", "name"); strings.Count(out, "secret/") != 2 {
		t.Errorf("the user's Secrets must stay: %s", out)
	}
}

func TestDeletionPolicyRevoke(t *testing.T) {
	ns := namespace(t, "revoke")
	rt := stack.Google.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope)
	manifest := userSecrets(rt) + `
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: drive}
spec:
  clientSecretRef: {name: client}
  refreshTokenSecretRef: {name: rt}
  deletionPolicy: Revoke
`
	if out, err := kubectlStdin(t, manifest, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/drive")
	kubectl(t, "delete", "-n", ns, "gog/drive", "--timeout=60s")
	if !stack.Google.Revoked(rt) {
		t.Error("deleting a grant with deletionPolicy Revoke did not revoke its refresh token at the fake")
	}
}

// userSecrets is the YAML of a client Secret "client" (the sample client) and a
// refresh-token Secret "rt" holding rt, followed by a document separator.
func userSecrets(rt string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: client}
stringData: {client_id: %q, client_secret: %q}
---
apiVersion: v1
kind: Secret
metadata: {name: rt}
stringData: {refresh_token: %q}
---`, devstack.SampleClientID, devstack.SampleClientSecret, rt)
}

func secretKey(t *testing.T, ns, name, key string) string {
	t.Helper()
	enc := kubectl(t, "get", "secret", "-n", ns, name, "-o", "jsonpath={.data."+strings.ReplaceAll(key, ".", `\.`)+"}")
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("secret %s key %s: %v", name, key, err)
	}
	return string(b)
}

func callAPI(t *testing.T, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, stack.Google.URL()+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestNamespaceDeletion: deleting a namespace with grants (one with deletionPolicy Revoke)
// completes; the revoke finalizer never blocks it, whatever order kube-controller-manager
// deletes the Secrets and grants in.
func TestNamespaceDeletion(t *testing.T) {
	ns := namespace(t, "doomed")
	rt := stack.Google.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope)
	manifest := userSecrets(rt) + `
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: keep}
spec: {clientSecretRef: {name: client}, refreshTokenSecretRef: {name: rt}}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: revoke}
spec: {clientSecretRef: {name: client}, refreshTokenSecretRef: {name: rt}, accessTokenSecretName: revoke-token, deletionPolicy: Revoke}
`
	if out, err := kubectlStdin(t, manifest, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/keep", "gog/revoke")
	kubectl(t, "delete", "namespace", ns, "--timeout=90s")
	if out, err := stack.Run("get", "namespace", ns); err == nil {
		t.Errorf("namespace still there after deletion: %s", out)
	}
}
