package providers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

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
	if !w.introspect(rt).Active || w.introspect(first).Active {
		t.Errorf("the stored refresh token is not the live one at Hydra")
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
	at, _ := w.accessToken("bye")
	rt := w.refreshToken("bye-refresh-token")
	if !w.introspect(rt).Active {
		t.Fatal("the stored refresh token is not active before the delete: the check below would prove nothing")
	}
	if err := w.C.Delete(w.Ctx, g); err != nil {
		t.Fatal(err)
	}
	w.eventually(30*time.Second, "the grant gone", func() (bool, string) {
		err := w.C.Get(w.Ctx, w.key("bye"), g)
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if w.introspect(rt).Active {
		t.Error("the refresh token is still active at Hydra after the grant with deletionPolicy Revoke was deleted")
	}
	if w.introspect(at).Active {
		t.Error("the access token is still active at Hydra after its refresh token was revoked")
	}
}
