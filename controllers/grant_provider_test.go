package controllers_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// providerGrant creates an OAuthClient whose token endpoint is the test's fake server
// (client_secret_post, as the fake takes it) and an OAuthGrant with a refresh token for it.
func (h *harness) providerGrant(name string, scopes []string, mutate ...func(*oauthv1alpha1.OAuthGrantSpec)) (refreshToken string) {
	h.T.Helper()
	h.Secret(name+"-client", map[string]string{"client_secret": clientSecret})
	rt := h.google.NewRefreshToken(clientID, scopes...)
	h.Secret(name+"-rt", map[string]string{"refresh_token": rt})
	oc := &oauthv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name}, Spec: oauthv1alpha1.OAuthClientSpec{
		OAuthProvider: oauthv1alpha1.OAuthProvider{ClientID: clientID, TokenEndpointAuthMethod: oauthv1alpha1.AuthClientSecretPost,
			Endpoints: &oauthv1alpha1.OAuthEndpoints{TokenURL: h.google.TokenURL(), RevocationURL: h.google.RevokeURL()}},
		ClientSecretRef: &oauthv1alpha1.OAuthClientSecretReference{Name: name + "-client"},
	}}
	if err := h.C.Create(h.Ctx, oc); err != nil {
		h.T.Fatal(err)
	}
	g := &oauthv1alpha1.OAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name}, Spec: oauthv1alpha1.OAuthGrantSpec{
		ClientRef:             oauthv1alpha1.OAuthClientReference{Name: name},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-rt"},
		Scopes:                scopes,
	}}
	for _, m := range mutate {
		m(&g.Spec)
	}
	if err := h.C.Create(h.Ctx, g); err != nil {
		h.T.Fatal(err)
	}
	return rt
}

// providerStatus is an OAuthGrant's status.
func (h *harness) providerStatus(name string) oauthv1alpha1.GrantStatus {
	g := &oauthv1alpha1.OAuthGrant{}
	if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: name}, g); err != nil {
		h.T.Fatal(err)
	}
	return g.Status
}

func (h *harness) providerCondition(name, typ string) string {
	st := h.providerStatus(name)
	c := meta.FindStatusCondition(st.Conditions, typ)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// An OAuthGrant goes through the same steps as a GoogleOAuthGrant: a token from its client
// object's token endpoint in a derived Secret it controls, refreshed before expiry, and a
// revoked refresh token reported as Revoked/InvalidGrant with no retry.
func TestOAuthGrantRefreshes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.google.SetLifetime(6 * time.Second)
	rt := h.providerGrant("p", []string{analytics})
	seen := map[string]bool{}
	h.Eventually(60*time.Second, "three refreshed tokens from the provider", func() (bool, string) {
		s := &corev1.Secret{}
		if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "p-access-token"}, s); err != nil {
			return false, err.Error()
		}
		if ref := metav1.GetControllerOf(s); ref == nil || ref.Kind != oauthv1alpha1.KindOAuthGrant || ref.Name != "p" {
			t.Fatalf("derived Secret's controller is %v, want the OAuthGrant", ref)
		}
		at := string(s.Data["access_token"])
		if !h.google.AccessTokenValid(at) {
			return false, "the derived Secret's token is not valid (yet)"
		}
		seen[at] = true
		return len(seen) >= 3, fmt.Sprintf("%d distinct tokens, Ready %s", len(seen), h.providerCondition("p", oauthv1alpha1.ConditionReady))
	})
	if got := h.providerCondition("p", oauthv1alpha1.ConditionReady); got != "True/"+oauthv1alpha1.ReasonTokenValid {
		t.Errorf("Ready = %s", got)
	}
	if got := h.providerCondition("p", oauthv1alpha1.ConditionScopesGranted); got != "True/"+oauthv1alpha1.ReasonAllScopesGranted {
		t.Errorf("ScopesGranted = %s", got)
	}

	h.google.RevokeRefreshToken(rt)
	h.Eventually(30*time.Second, "Revoked", func() (bool, string) {
		got := h.providerCondition("p", oauthv1alpha1.ConditionRevoked)
		return got == "True/"+oauthv1alpha1.ReasonInvalidGrant, got
	})
	if got := h.providerCondition("p", oauthv1alpha1.ConditionStalled); got != "True/"+oauthv1alpha1.ReasonInvalidGrant {
		t.Errorf("Stalled = %s", got)
	}
}

// deletionPolicy Revoke revokes an OAuthGrant's refresh token at its provider's RFC 7009
// endpoint when the grant is deleted; a client without a revocation endpoint refuses the
// policy up front (Ready=False, ClientNotAllowed, naming what to change).
func TestOAuthGrantRevokeOnDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rt := h.providerGrant("del", []string{analytics})
	g := &oauthv1alpha1.OAuthGrant{}
	key := client.ObjectKey{Namespace: h.Name, Name: "del"}
	h.Eventually(30*time.Second, "Ready", func() (bool, string) {
		got := h.providerCondition("del", oauthv1alpha1.ConditionReady)
		return got == "True/"+oauthv1alpha1.ReasonTokenValid, got
	})
	if err := h.C.Get(h.Ctx, key, g); err != nil {
		t.Fatal(err)
	}
	revoke := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"deletionPolicy":"Revoke"}}`))
	if err := h.C.Patch(h.Ctx, g, revoke); err != nil {
		t.Fatal(err)
	}
	h.Eventually(30*time.Second, "the revoke finalizer", func() (bool, string) {
		if err := h.C.Get(h.Ctx, key, g); err != nil {
			t.Fatal(err)
		}
		return len(g.Finalizers) == 1, fmt.Sprint(g.Finalizers)
	})
	if err := h.C.Delete(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.Eventually(30*time.Second, "the grant gone, its refresh token revoked at the provider", func() (bool, string) {
		err := h.C.Get(h.Ctx, key, &oauthv1alpha1.OAuthGrant{})
		return client.IgnoreNotFound(err) == nil && err != nil && h.google.Revoked(rt), fmt.Sprintf("get: %v, revoked: %v", err, h.google.Revoked(rt))
	})

	// A client with no revocation endpoint: the policy is refused before any token request.
	h.providerGrant("norevoke", []string{analytics})
	oc := &oauthv1alpha1.OAuthClient{}
	if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "norevoke"}, oc); err != nil {
		t.Fatal(err)
	}
	if err := h.C.Patch(h.Ctx, oc, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"endpoints":{"revocationURL":null}}}`))); err != nil {
		t.Fatal(err)
	}
	if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "norevoke"}, g); err != nil {
		t.Fatal(err)
	}
	if err := h.C.Patch(h.Ctx, g, revoke); err != nil {
		t.Fatal(err)
	}
	h.Eventually(30*time.Second, "ClientNotAllowed", func() (bool, string) {
		got := h.providerCondition("norevoke", oauthv1alpha1.ConditionReady)
		return got == "False/"+oauthv1alpha1.ReasonClientNotAllowed, got
	})
}
