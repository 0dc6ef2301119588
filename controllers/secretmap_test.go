package controllers_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// TestConflictClearsWhenForeignSecretGoes: a Secret someone else owns sits at a grant's
// derived name, by default and set in spec.accessTokenSecretName. A conflict is never
// retried on a timer, so only the Secret's deletion event can wake the grant: each must
// then become Ready.
func TestConflictClearsWhenForeignSecretGoes(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		grant, target string
		spec          func(*oauthv1alpha1.GoogleOAuthGrantSpec)
	}{
		{"by-default", "by-default-access-token", nil},
		{"by-spec", "chosen-name", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.AccessTokenSecretName = "chosen-name" }},
	} {
		t.Run(c.grant, func(t *testing.T) {
			h.secret(c.target, map[string]string{"payload": "zq8x-foreign-payload-7731"})
			h.credentials(c.grant)
			if c.spec != nil {
				h.grant(c.grant, c.spec)
			} else {
				h.grant(c.grant)
			}
			h.waitCondition(c.grant, oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonTargetSecretConflict)
			if err := h.c.Delete(h.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: c.target, Namespace: h.ns}}); err != nil {
				t.Fatal(err)
			}
			h.waitReady(c.grant)
		})
	}
}
