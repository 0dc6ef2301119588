package risc_test

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

// A tenant's own OAuth client (another project) for the same account: Google's genuine
// tokens-revoked event about that project (aud: the tenant's client) revokes only the grant
// using that client, never the account's grants on other clients, whose tokens Google did
// not revoke.
func TestTokenEventsConcernOnlyTheirAudience(t *testing.T) {
	h := newHarness(t)
	const tenantClient, tenantSecret = "999999999999-tenant.apps.googleusercontent.com", "GOCSPX-tenantTenantTenant01"
	h.google.AddClient(tenantClient, tenantSecret)
	rtOurs := h.grant("ours", &alice, "openid")
	rtTheirs := h.google.NewRefreshToken(tenantClient, analytics, "openid")
	h.google.SetAccount(rtTheirs, alice)
	h.secret("theirs-client", map[string]string{"client_id": tenantClient, "client_secret": tenantSecret})
	h.secret("theirs-refresh-token", map[string]string{"refresh_token": rtTheirs})
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: h.Name}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "theirs-client"},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "theirs-refresh-token"},
	}}
	if err := h.C.Create(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ours", "theirs"} {
		h.waitReady(n)
		h.waitAccount(n)
	}
	oursToken := string(h.GetSecret("ours-access-token").Data["access_token"])

	h.send(202, risctransmitter.Options{Audience: tenantClient}, h.tx.AccountEvent(risc.TokensRevoked, alice.Sub, nil))
	h.waitCondition("theirs", oauthv1alpha1.ConditionRevoked, "True/TokensRevokedByGoogle")
	// token-revoked naming our token, but for the tenant's client: not ours either.
	h.send(202, risctransmitter.Options{Audience: tenantClient}, risctransmitter.TokenRevoked(rtOurs, risc.AlgPrefix))
	// A later event for our client goes through, so the ones before were applied by now.
	h.send(202, risctransmitter.Options{}, h.tx.AccountEvent(risc.SessionsRevoked, alice.Sub, nil))
	h.Eventually(10*time.Second, "sessions-revoked warned ours", func() (bool, string) {
		return h.countEvents("ours", "Warning/"+oauthv1alpha1.ReasonSessionsRevoked) == 1, fmt.Sprint(h.events("ours"))
	})
	if c := condition(h.GetGrant("ours"), oauthv1alpha1.ConditionReady); c != "True/TokenValid" {
		t.Errorf("our grant's Ready is %s after token events for another client: want True/TokenValid", c)
	}
	if s := h.GetSecret("ours-access-token"); string(s.Data["access_token"]) != oursToken {
		t.Error("our grant's access token was withdrawn by token events for another client")
	}
}
