package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestServiceAccountGrantFromYAML: a service-account grant, as a user writes it (the key
// Secret and the grant in one manifest), becomes Ready for kubectl wait, its derived Secret
// works at the API, and the API server refuses deletionPolicy Revoke for it.
func TestServiceAccountGrantFromYAML(t *testing.T) {
	ns := namespace(t, "service-account")
	const email = "reporter@fake-project.iam.gserviceaccount.com"
	key := stack.Google.NewServiceAccountKey(email)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: analytics-sa-key}
stringData:
  credentials.json: %q
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: analytics-sa}
spec:
  serviceAccountKeySecretRef: {name: analytics-sa-key}
  scopes: [https://www.googleapis.com/auth/analytics.readonly]
`, key.JSON)
	if out, err := kubectlStdin(t, manifest, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/analytics-sa")
	if code := callAPI(t, secretKey(t, ns, "analytics-sa-access-token", "access_token")); code != http.StatusOK {
		t.Errorf("API call with the service account's derived token: HTTP %d", code)
	}
	if got := kubectl(t, "get", "gog", "-n", ns, "analytics-sa", "-o", "jsonpath={.status.account.email}"); got != email {
		t.Errorf("status.account.email = %q, want %s", got, email)
	}

	revoke := strings.Replace(manifest[strings.Index(manifest, "apiVersion: oauth"):], "name: analytics-sa}", "name: revoke-sa}", 1) + "  deletionPolicy: Revoke\n"
	out, err := kubectlStdin(t, revoke, "apply", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(out, "spec.deletionPolicy Revoke is not allowed with spec.serviceAccountKeySecretRef") {
		t.Errorf("kubectl apply of a service-account grant with deletionPolicy Revoke: err=%v, output:\n%s", err, out)
	}
}
