package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
)

// kubectl grantkeeper status, refresh and revoke take an OAuthGrant (oag/NAME, or NAME when
// no GoogleOAuthGrant has it); revoke goes to the provider's RFC 7009 endpoint that the
// grant's OAuthClient uses, authenticated as that client. The provider here is the fake
// (client_secret_post, on loopback: the manager runs with --allow-loopback-providers).
func TestPluginOAuthGrant(t *testing.T) {
	ns := namespace(t, "plugin-oag")
	stack.StopManager()
	defer func() {
		stack.StopManager()
		if err := stack.StartManager(); err != nil {
			t.Error(err)
		}
	}()
	if err := stack.StartManager("--allow-loopback-providers"); err != nil {
		t.Fatal(err)
	}
	g := stack.Google
	rt := g.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: p-client}
stringData: {client_secret: %[2]q}
---
apiVersion: v1
kind: Secret
metadata: {name: p-rt}
stringData: {refresh_token: %[3]q}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: OAuthClient
metadata: {name: p}
spec:
  clientID: %[1]q
  tokenEndpointAuthMethod: client_secret_post
  endpoints: {tokenURL: %[4]q, revocationURL: %[5]q}
  clientSecretRef: {name: p-client}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: OAuthGrant
metadata: {name: reports}
spec:
  clientRef: {name: p}
  refreshTokenSecretRef: {name: p-rt}
  scopes: [%[6]q]
`, devstack.SampleClientID, devstack.SampleClientSecret, rt, g.TokenURL(), g.RevokeURL(), devstack.SampleScope)
	if out, err := kubectlStdin(t, manifest, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "oag/reports")

	if out, code := runPlugin(t, "status", "-n", ns); code != 0 || !strings.Contains(out, "oauthgrant/reports") || !strings.Contains(out, "TokenValid") {
		t.Errorf("status exited %d, or does not list the OAuthGrant:\n%s", code, out)
	}
	if out, code := runPlugin(t, "refresh", "-n", ns, "reports", "--wait"); code != 0 || !strings.Contains(out, "oauthgrant.oauth.grantkeeper.dev/reports refresh requested") || !strings.Contains(out, "refreshed: token valid until") {
		t.Errorf("refresh --wait exited %d:\n%s", code, out)
	}
	if out, code := runPlugin(t, "status", "-n", ns, "gog/reports"); code == 0 || !strings.Contains(out, "not found") {
		t.Errorf("status gog/reports exited %d: an OAuthGrant answered for the GoogleOAuthGrant kind:\n%s", code, out)
	}
	if out, code := runPlugin(t, "revoke", "-n", ns, "oag/reports", "--yes", "--timeout=30s"); code != 0 || !strings.Contains(out, "Revoked the refresh token at the provider.") || !strings.Contains(out, "oauthgrant.oauth.grantkeeper.dev/reports Revoked=True") {
		t.Errorf("revoke exited %d:\n%s", code, out)
	}
	if !g.Revoked(rt) && g.RefreshTokenUsable(g.CurrentRefreshToken(rt)) {
		t.Errorf("the provider still accepts the grant's refresh token after revoke")
	}
	if out, code := runPlugin(t, "status", "-n", ns, "oag/reports"); code != 1 || !strings.Contains(out, "InvalidGrant") {
		t.Errorf("status of the revoked OAuthGrant exited %d (want 1):\n%s", code, out)
	}
}
