package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
)

const driveScope = "https://www.googleapis.com/auth/drive.readonly"

// plugin returns `kubectl grantkeeper ARGS...` run through the real kubectl, with the plugin
// binary on PATH as a user would install it.
func plugin(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "kubectl"), append(append([]string{"grantkeeper"}, args...), "--kubeconfig="+stack.AdminKubeconfig)...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(workDir, "plugins")+string(os.PathListSeparator)+os.Getenv("PATH"))
	return cmd
}

func runPlugin(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := plugin(args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("kubectl grantkeeper %v: %v", args, err)
	return "", -1
}

func clientFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "client_secret.json")
	js := fmt.Sprintf(`{"installed":{"client_id":%q,"project_id":"demo","auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token","client_secret":%q,"redirect_uris":["http://localhost"]}}`,
		devstack.SampleClientID, devstack.SampleClientSecret)
	if err := os.WriteFile(f, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// authorize runs `kubectl grantkeeper authorize`, plays the browser with browse (given the
// consent URL), and returns the plugin's output and exit code.
func authorize(t *testing.T, browse func(consent string), args ...string) (string, int) {
	t.Helper()
	base := []string{"authorize", "--no-browser", "--timeout=30s", "--auth-url", stack.Google.AuthURL(), "--token-url", stack.Google.TokenURL()}
	if !slices.ContainsFunc(args, func(a string) bool { return a == "--client" || a == "--cluster-client" }) {
		base = append(base, "--client-secret-file", clientFile(t))
	}
	cmd := plugin(append(base, args...)...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var transcript strings.Builder
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		line := lines.Text()
		transcript.WriteString(line + "\n")
		if strings.HasPrefix(line, stack.Google.AuthURL()+"?") {
			browse(line)
			break
		}
	}
	rest, _ := io.ReadAll(stderr)
	transcript.Write(rest)
	err = cmd.Wait()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String() + transcript.String(), code
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}

// consentAndReturn is the user granting access: the consent page redirects to the plugin.
func consentAndReturn(t *testing.T) func(string) {
	return func(consent string) {
		resp, err := noRedirect.Get(consent)
		if err != nil {
			t.Errorf("consent: %v", err)
			return
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || loc == "" {
			t.Errorf("consent answered %d, Location %q", resp.StatusCode, loc)
			return
		}
		back, err := http.Get(loc)
		if err != nil {
			t.Errorf("redirect to the plugin: %v", err)
			return
		}
		back.Body.Close()
	}
}

func TestPluginAuthorizeStatusRefreshRevoke(t *testing.T) {
	ns := namespace(t, "plugin")
	stack.Google.GrantOnly(devstack.SampleScope)
	defer stack.Google.GrantOnly()
	out, code := authorize(t, consentAndReturn(t), "analytics", "-n", ns, "--scopes", devstack.SampleScope+","+driveScope, "--login-hint", "you@example.com")
	if code != 0 {
		t.Fatalf("authorize exited %d:\n%s", code, out)
	}
	for _, want := range []string{"googleoauthgrant.oauth.grantkeeper.dev/analytics created", "secret/analytics-refresh-token created",
		"WARNING: scope " + driveScope + " was requested but not granted"} {
		if !strings.Contains(out, want) {
			t.Errorf("authorize output lacks %q:\n%s", want, out)
		}
	}
	// Issue 28: every refresh asks for spec.scopes, which the partial consent does not cover:
	// Google refuses (invalid_scope), nothing narrower is published, and the grant says so.
	kubectl(t, "wait", "-n", ns, "--for=condition=ScopesGranted=false", "--timeout=60s", "gog/analytics")
	if got := kubectl(t, "get", "gog", "-n", ns, "analytics", "-o", "jsonpath={.status.conditions[?(@.type==\"ScopesGranted\")].reason}/{.status.conditions[?(@.type==\"Ready\")].reason}"); got != "MissingScopes/TokenRequestRejected" {
		t.Errorf("ScopesGranted/Ready reasons %q, want MissingScopes/TokenRequestRejected", got)
	}

	// Re-running authorize for the granted scope replaces the stored refresh token (and
	// spec.scopes) rather than adding a grant.
	out, code = authorize(t, consentAndReturn(t), "analytics", "-n", ns, "--scopes", devstack.SampleScope)
	if code != 0 || !strings.Contains(out, "Replaced the stored refresh token") {
		t.Errorf("second authorize exited %d:\n%s", code, out)
	}
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/analytics")

	if out, code := runPlugin(t, "status", "-n", ns, "analytics"); code != 0 || !strings.Contains(out, "TokenValid") || !strings.Contains(out, "analytics.readonly") {
		t.Errorf("status exited %d:\n%s", code, out)
	}
	if out, code := runPlugin(t, "refresh", "-n", ns, "analytics", "--wait"); code != 0 || !strings.Contains(out, "refreshed: token valid until") {
		t.Errorf("refresh --wait exited %d:\n%s", code, out)
	}

	if out, code := runPlugin(t, "revoke", "-n", ns, "analytics", "--yes", "--revoke-url", stack.Google.RevokeURL()); code != 0 || !strings.Contains(out, "Revoked=True") {
		t.Errorf("revoke exited %d:\n%s", code, out)
	}
	// The LAST ERROR column says how to repair it: the command, with the grant's own scopes.
	fix := "kubectl grantkeeper authorize analytics -n " + ns + " --client-secret-file client_secret.json --scopes " + devstack.SampleScope + " "
	if out, code := runPlugin(t, "status", "-n", ns); code != 1 || !strings.Contains(out, "InvalidGrant") || !strings.Contains(out, fix) {
		t.Errorf("status of a revoked grant exited %d (want 1), or lacks the command that repairs it (%q):\n%s", code, fix, out)
	}
}

func TestPluginAuthorizeADCAndDryRun(t *testing.T) {
	ns := namespace(t, "plugin-adc")
	out, code := authorize(t, consentAndReturn(t), "reports", "-n", ns, "--scopes", devstack.SampleScope, "-o", "adc")
	if code != 0 || !strings.Contains(out, "secret/reports-credentials created") {
		t.Fatalf("authorize -o adc exited %d:\n%s", code, out)
	}
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/reports")
	if got := kubectl(t, "get", "gog", "-n", ns, "reports", "-o", "jsonpath={.spec.authorizedUserSecretRef.name}"); got != "reports-credentials" {
		t.Errorf("authorizedUserSecretRef.name = %q", got)
	}

	out, code = authorize(t, consentAndReturn(t), "dry", "-n", ns, "--scopes", devstack.SampleScope, "--dry-run=client", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "kind: GoogleOAuthGrant") || !strings.Contains(out, "kind: Secret") {
		t.Fatalf("--dry-run=client -o yaml exited %d:\n%s", code, out)
	}
	if got := kubectl(t, "get", "gog,secret", "-n", ns, "-o", "name"); strings.Contains(got, "dry") {
		t.Errorf("dry run created objects: %s", got)
	}
}

func TestPluginAuthorizeFailsCleanly(t *testing.T) {
	ns := namespace(t, "plugin-fail")
	stack.Google.DenyNextConsent()
	out, code := authorize(t, consentAndReturn(t), "denied", "-n", ns, "--scopes", devstack.SampleScope)
	if code == 0 || !strings.Contains(out, "access_denied") {
		t.Errorf("authorize after the user declined exited %d:\n%s", code, out)
	}

	// A stray redirect with another state gets 400 and does not end the flow (issue 28 item
	// 14): the browser's own redirect that follows still completes it.
	browser := consentAndReturn(t)
	out, code = authorize(t, func(consent string) {
		u, _ := url.Parse(consent)
		redirect := u.Query().Get("redirect_uri")
		resp, err := http.Get(redirect + "?code=4/forged&state=not-the-state")
		if err != nil {
			t.Errorf("stray redirect: %v", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("stray redirect answered %d, want 400", resp.StatusCode)
		}
		browser(consent)
	}, "stray", "-n", ns, "--scopes", devstack.SampleScope)
	if code != 0 {
		t.Errorf("authorize after a stray redirect exited %d:\n%s", code, out)
	}
	if got := kubectl(t, "get", "gog", "-n", ns, "-o", "name"); !strings.Contains(got, "stray") {
		t.Errorf("the browser's redirect after a stray one created no grant: %s", got)
	}
	if got := kubectl(t, "get", "gog,secret", "-n", ns, "-o", "name"); strings.Contains(got, "denied") || strings.Contains(got, "forged") {
		t.Errorf("a failed authorize created objects: %s", got)
	}
}

// TestPluginAuthorizeSharedClient: authorize --client and --cluster-client create a grant
// naming the shared client (and no client Secret), reading the client's Secret only as the
// user; a user who may not read it is told so, and nothing is created.
func TestPluginAuthorizeSharedClient(t *testing.T) {
	ns := namespace(t, "plugin-shared")
	clientSecret := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: shared-client, namespace: %s}\nstringData: {client_id: %q, client_secret: %q}\n",
		ns, devstack.SampleClientID, devstack.SampleClientSecret)
	objs := clientSecret + fmt.Sprintf(`---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthClient
metadata: {name: shared, namespace: %[1]s}
spec: {secretRef: {name: shared-client}}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: ClusterGoogleOAuthClient
metadata: {name: plugin-shared}
spec: {secretRef: {name: shared-client, namespace: %[1]s}, namespaces: [%[1]s]}
`, ns)
	if out, err := kubectlStdin(t, objs, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = stack.Run("delete", "cgoc", "plugin-shared", "--ignore-not-found") })
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "goc/shared")
	if id := kubectl(t, "get", "goc", "-n", ns, "shared", "-o", "jsonpath={.status.clientID}"); id != devstack.SampleClientID {
		t.Errorf("goc status.clientID = %q", id)
	}

	for _, tc := range []struct{ grant, flag, client, kind string }{
		{"local", "--client", "shared", "GoogleOAuthClient"},
		{"cluster", "--cluster-client", "plugin-shared", "ClusterGoogleOAuthClient"},
	} {
		out, code := authorize(t, consentAndReturn(t), tc.grant, "-n", ns, "--scopes", devstack.SampleScope, tc.flag, tc.client)
		if code != 0 {
			t.Fatalf("authorize %s exited %d:\n%s", tc.flag, code, out)
		}
		if strings.Contains(out, "oauth-client") {
			t.Errorf("authorize %s wrote a client Secret:\n%s", tc.flag, out)
		}
		kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/"+tc.grant)
		if got := kubectl(t, "get", "gog", "-n", ns, tc.grant, "-o", "jsonpath={.spec.clientRef.kind}/{.spec.clientRef.name}"); got != tc.kind+"/"+tc.client {
			t.Errorf("grant %s clientRef = %s", tc.grant, got)
		}
	}

	// A user who may manage grants but not read the client's Secret.
	role := fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: grants-only, namespace: %[1]s}
rules:
- {apiGroups: [oauth.grantkeeper.dev], resources: [googleoauthgrants, googleoauthclients], verbs: [get, list, watch, create, update, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: grants-only, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: grants-only}
subjects: [{kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}]
`, ns)
	if out, err := kubectlStdin(t, role, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	out, code := runPlugin(t, "authorize", "jane", "-n", ns, "--as", "jane", "--scopes", devstack.SampleScope, "--client", "shared", "--no-browser", "--timeout=5s",
		"--auth-url", stack.Google.AuthURL(), "--token-url", stack.Google.TokenURL())
	if code == 0 || !strings.Contains(out, `you may not read Secret "shared-client"`) || !strings.Contains(out, "consent links") {
		t.Errorf("authorize without read access to the client's Secret exited %d:\n%s", code, out)
	}
	if strings.Contains(out, stack.Google.AuthURL()) {
		t.Errorf("a consent URL was offered to a user who cannot complete the flow:\n%s", out)
	}
	if got := kubectl(t, "get", "gog,secret", "-n", ns, "-o", "name"); strings.Contains(got, "jane") {
		t.Errorf("a refused authorize created objects: %s", got)
	}
}
