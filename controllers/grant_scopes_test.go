package controllers_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

const gmail = "https://www.googleapis.com/auth/gmail.readonly"

// Issue 28: a refresh token that was granted more than spec.scopes (by an older consent with
// include_granted_scopes, or another namespace's consent on a shared client) yields tokens
// narrowed to spec.scopes: the refresh sends them as scope.
func TestRefreshNarrowsToSpecScopes(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.credentials("wide", analytics, gmail, fakegoogle.ScopeOpenID, fakegoogle.ScopeEmail)
	h.grant("wide", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.Scopes = []string{analytics} })
	g := h.waitReady("wide")
	carried := h.google.AccessTokenScopes(string(h.derived(g.TargetSecretName()).Data[oauthv1alpha1.AccessTokenKey]))
	if !slices.Equal(carried, []string{analytics, fakegoogle.ScopeOpenID, "email"}) {
		t.Errorf("the published token carries %v, want spec.scopes with openid and email", carried)
	}
	if slices.Contains(g.Status.GrantedScopes, gmail) {
		t.Errorf("status.grantedScopes %v lists a scope outside spec.scopes", g.Status.GrantedScopes)
	}
	if g.Status.Account == nil || g.Status.Account.Sub != h.google.AccountOf(rt).Sub {
		t.Errorf("status.account %+v: the narrowed refresh must still name the account", g.Status.Account)
	}

	// A refresh token never granted openid or email: asked for spec.scopes alone after the
	// identity scopes are refused.
	plain := h.credentials("plain", analytics, gmail)
	h.grant("plain", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.Scopes = []string{analytics} })
	g = h.waitReady("plain")
	if carried := h.google.AccessTokenScopes(string(h.derived(g.TargetSecretName()).Data[oauthv1alpha1.AccessTokenKey])); !slices.Equal(carried, []string{analytics}) {
		t.Errorf("the published token carries %v, want %s", carried, analytics)
	}
	// Later refreshes of that token remember it: one request each, not a refused one first.
	first := h.google.Requests(plain)
	h.requestRefresh("plain")
	h.Eventually(20*time.Second, "the manual refresh handled", func() (bool, string) {
		return h.GetGrant("plain").Status.LastHandledRefreshRequest != "", ""
	})
	if n := h.google.Requests(plain) - first; n != 1 {
		t.Errorf("a refresh of a token without the identity scopes made %d token requests, want 1", n)
	}
}

// Issue 28: an answer that still carries scopes outside spec.scopes (a Google that does not
// narrow) is not published: Ready=False/ExcessScopes naming them, an event, no derived
// Secret, and no further requests until something changes.
func TestExcessScopesNotPublished(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.IgnoreRefreshScope(true)
	rt := h.credentials("leaky", analytics, gmail, fakegoogle.ScopeOpenID)
	h.grant("leaky", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.Scopes = []string{analytics} })
	g := h.waitCondition("leaky", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonExcessScopes)
	msg := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady).Message
	for _, want := range []string{gmail, "not published", "kubectl grantkeeper authorize leaky"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Ready message lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "openid") {
		t.Errorf("Ready message names openid as an excess scope: %s", msg)
	}
	h.waitEvent("leaky", "Warning/"+oauthv1alpha1.ReasonExcessScopes)
	err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: g.TargetSecretName()}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("derived Secret: %v, want none (the token must not be published)", err)
	}
	if g.Status.ExpiresAt != nil || slices.Contains(g.Status.GrantedScopes, gmail) {
		t.Errorf("status reports the unpublished token: expiresAt %v, grantedScopes %v", g.Status.ExpiresAt, g.Status.GrantedScopes)
	}
	n := h.google.Requests(rt)
	h.poke("leaky")
	if m := h.google.Requests(rt); m != n {
		t.Errorf("%d more token requests after ExcessScopes: it must wait for a change", m-n)
	}
}
