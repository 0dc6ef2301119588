package controllers

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Interning changes no value, and two cached grants then share their repeated strings.
func TestInternGrantSharesRepeatedStrings(t *testing.T) {
	template := &oauthv1alpha1.GoogleOAuthGrant{
		TypeMeta:   metav1.TypeMeta{APIVersion: "oauth.grantkeeper.dev/v1alpha1", Kind: "GoogleOAuthGrant"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "a", Finalizers: []string{"oauth.grantkeeper.dev/revoke"}, Labels: map[string]string{"app": "x"}},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "client"},
			Scopes: []string{"https://www.googleapis.com/auth/analytics.readonly"}},
		Status: oauthv1alpha1.GrantStatus{ClientID: "123-x.apps.googleusercontent.com", Conditions: []metav1.Condition{
			{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "TokenValid", Message: "valid until 10:00"},
			{Type: "Revoked", Status: metav1.ConditionFalse, Reason: "RefreshTokenAccepted", Message: "Google accepted the refresh token"},
		}},
	}
	// Copies made from separate byte slices, as two decodes would make them.
	fresh := func() *oauthv1alpha1.GoogleOAuthGrant {
		g := template.DeepCopy()
		clone := func(s *string) { *s = string([]byte(*s)) }
		clone(&g.Namespace)
		clone(&g.Finalizers[0])
		clone(&g.Spec.ClientSecretRef.Name)
		clone(&g.Status.ClientID)
		for i := range g.Status.Conditions {
			clone(&g.Status.Conditions[i].Reason)
			clone(&g.Status.Conditions[i].Message)
		}
		return g
	}
	a, b := fresh(), fresh()
	internGrant(a)
	internGrant(b)
	if !equality.Semantic.DeepEqual(a, template) {
		t.Fatalf("interning changed the grant:\n%+v\nwant\n%+v", a, template)
	}
	same := func(what, x, y string) {
		if unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s is not shared between two cached grants", what)
		}
	}
	same("namespace", a.Namespace, b.Namespace)
	same("finalizer", a.Finalizers[0], b.Finalizers[0])
	same("client Secret name", a.Spec.ClientSecretRef.Name, b.Spec.ClientSecretRef.Name)
	same("client id", a.Status.ClientID, b.Status.ClientID)
	same("condition reason", a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason)
	same("Revoked message", a.Status.Conditions[1].Message, b.Status.Conditions[1].Message)
}

// Entries past maxCacheLag are no longer consulted; the record drops them instead of keeping
// one per grant until its next reconcile, an hour away with Google's tokens.
func TestLastWritesForgetsOldEntries(t *testing.T) {
	var w lastWrites
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		w.record(types.NamespacedName{Namespace: "ns", Name: fmt.Sprint(i)}, t0, func(e *replaced) { e.grant = "1" })
	}
	recent := types.NamespacedName{Namespace: "ns", Name: "recent"}
	w.record(recent, t0.Add(maxCacheLag+time.Second), func(e *replaced) { e.grant = "7" })
	if len(w.m) != 1 {
		t.Fatalf("%d entries kept, want only the recent one", len(w.m))
	}
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "7"}}
	if !w.stale(recent, t0.Add(maxCacheLag+time.Second), g, nil) {
		t.Error("the recent entry was lost")
	}
}
