package providers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// TestExcessScopesKeepRotatedToken: Hydra does not narrow a refresh to the scope sent, so a
// refresh token consented with more than spec.scopes yields a token carrying more. That
// token is not published (Ready=False, ExcessScopes, naming the extra scope), yet Hydra has
// already rotated the refresh token: the new one must be in the user's Secret, or the grant
// is lost for good once the person fixes the consent's scopes... and any later refresh with
// the old one would revoke the family.
func TestExcessScopesKeepRotatedToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretBasic, 0, "files.read", "files.write")
	first := w.consent(c, oauthv1alpha1.AuthClientSecretBasic, nil, "offline_access", "files.read", "files.write")
	w.refreshTokenSecret("wide-refresh-token", first)
	w.oauthClient("hydra", c, oauthv1alpha1.AuthClientSecretBasic, nil, "")
	w.grant("wide", "hydra", []string{"offline_access", "files.read"})

	g := w.waitCondition("wide", oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonExcessScopes)
	if msg := message(g, oauthv1alpha1.ConditionReady); !strings.Contains(msg, "files.write") {
		t.Errorf("ExcessScopes message %q does not name the extra scope", msg)
	}
	w.waitEvent("wide", "Warning/"+oauthv1alpha1.ReasonExcessScopes)
	if err := w.C.Get(w.Ctx, w.key("wide-access-token"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("a derived Secret exists for a token carrying scopes outside spec.scopes (get: %v)", err)
	}
	rt := w.refreshToken("wide-refresh-token")
	if rt == first {
		t.Fatal("Hydra rotated the refresh token, but the Secret still holds the rotated-out one")
	}
	w.liveRefreshToken("wide-refresh-token")
	if w.introspect(first).Active {
		t.Errorf("the first refresh token is still active at Hydra after the refresh")
	}
}

// TestRevokeOnDelete: deletionPolicy Revoke revokes the refresh token at Hydra's RFC 7009
// endpoint (discovered) when the grant is deleted: the refresh token the grant last stored
// and the access token it published are both dead at Hydra, and the grant is gone.
func TestRevokeOnDelete(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scopes := []string{"offline_access", "files.read"}
	c, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretPost, 0, "files.read")
	w.refreshTokenSecret("bye-refresh-token", w.consent(c, oauthv1alpha1.AuthClientSecretPost, nil, scopes...))
	w.oauthClient("hydra", c, oauthv1alpha1.AuthClientSecretPost, nil, "")
	g := w.grant("bye", "hydra", scopes, func(s *oauthv1alpha1.OAuthGrantSpec) { s.DeletionPolicy = oauthv1alpha1.DeletionPolicyRevoke })
	w.waitReady("bye")
	at, _ := w.liveAccessToken("bye")
	rt := w.liveRefreshToken("bye-refresh-token")
	if err := w.C.Delete(w.Ctx, g); err != nil {
		t.Fatal(err)
	}
	w.eventually(30*time.Second, "the grant gone", func() (bool, string) {
		err := w.C.Get(w.Ctx, w.key("bye"), g)
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if w.introspect(rt).Active {
		t.Errorf("the refresh token is still active at Hydra after the grant with deletionPolicy Revoke was deleted; events: %q", w.events("bye"))
	}
	if w.introspect(at).Active {
		t.Error("the access token is still active at Hydra after its refresh token was revoked")
	}
}

// TestClusterClient: a grant naming a ClusterOAuthClient that admits its namespace (the
// client secret in the manager's namespace) is Ready with Hydra's token; one naming a
// cluster client that does not admit it is refused (ClientNotAllowed) before any request.
func TestClusterClient(t *testing.T) {
	t.Parallel()
	w := newWorldWith(t, false)
	scopes := []string{"offline_access", "files.read"}
	c, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretBasic, 0, "files.read")
	w.Secret("shared-client", map[string]string{"client_secret": c.Secret})
	cluster := func(name string, namespaces ...string) {
		cc := &oauthv1alpha1.ClusterOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: oauthv1alpha1.ClusterOAuthClientSpec{
			OAuthProvider:   oauthv1alpha1.OAuthProvider{IssuerURL: idp.Issuer, ClientID: c.ID},
			ClientSecretRef: &oauthv1alpha1.ClusterOAuthClientSecretReference{OAuthClientSecretReference: oauthv1alpha1.OAuthClientSecretReference{Name: "shared-client"}},
			Namespaces:      namespaces,
		}}
		if err := w.C.Create(w.Ctx, cc); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), cc) })
	}
	cluster("hydra-"+w.Name, w.Name)
	cluster("elsewhere-"+w.Name, "some-other-namespace")
	ref := func(name string) func(*oauthv1alpha1.OAuthGrantSpec) {
		return func(s *oauthv1alpha1.OAuthGrantSpec) {
			s.ClientRef = oauthv1alpha1.OAuthClientReference{Kind: oauthv1alpha1.KindClusterOAuthClient, Name: name}
		}
	}

	w.refreshTokenSecret("shared-refresh-token", w.consent(c, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...))
	w.grant("shared", "", scopes, ref("hydra-"+w.Name))
	w.waitReady("shared")
	if _, in := w.liveAccessToken("shared"); in.ClientID != c.ID {
		t.Errorf("Hydra says of the published token: %+v; want active, client %s", in, c.ID)
	}

	w.refreshTokenSecret("refused-refresh-token", w.consent(c, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...))
	w.grant("refused", "", scopes, ref("elsewhere-"+w.Name))
	g := w.waitCondition("refused", oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonClientNotAllowed)
	if msg := message(g, oauthv1alpha1.ConditionReady); !strings.Contains(msg, "elsewhere-"+w.Name) {
		t.Errorf("ClientNotAllowed message %q does not name the cluster client", msg)
	}
}
