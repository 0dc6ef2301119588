package controllers_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
)

// TestConflictClearsWhenForeignSecretGoes: a Secret someone else owns sits at a grant's
// derived name, by default and set in spec.accessTokenSecretName. A conflict is never
// retried on a timer, so only the Secret's deletion event can wake the grant: each must
// then become Ready.
func TestConflictClearsWhenForeignSecretGoes(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
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
			if err := h.C.Delete(h.Ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: c.target, Namespace: h.Name}}); err != nil {
				t.Fatal(err)
			}
			h.waitReady(c.grant)
		})
	}
}

// TestSecretEventsReachTheirGrants: a change to a Secret a grant reads wakes that grant,
// whether the index files the Secret by bucket (a refresh token, here one sharing its bucket
// with another grant's) or by name (a client Secret two grants share).
func TestSecretEventsReachTheirGrants(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	// Two grants whose refresh-token Secrets fall in one bucket.
	names := map[string]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		n := fmt.Sprintf("bucket-%d", i)
		bucket := controllers.SecretBucket(n + "-refresh-token")
		if other, ok := names[bucket]; ok {
			a, b = other, n
		}
		names[bucket] = n
	}
	rtA, rtB := h.credentials(a), h.credentials(b)
	h.grant(a)
	h.grant(b)
	h.waitReady(a)
	h.waitReady(b)

	rotated := h.google.NewRefreshToken(clientID, analytics)
	s := &corev1.Secret{}
	h.Get(a+"-refresh-token", s)
	s.Data = map[string][]byte{"refresh_token": []byte(rotated)}
	if err := h.C.Update(h.Ctx, s); err != nil {
		t.Fatal(err)
	}
	h.Eventually(10*time.Second, "grant "+a+" to use its new refresh token", func() (bool, string) {
		return h.google.Requests(rotated) > 0, fmt.Sprintf("%d requests with it", h.google.Requests(rotated))
	})
	if n := h.google.Requests(rtB); n != 1 {
		t.Errorf("grant %s made %d token requests, want only its first: its Secret did not change", b, n)
	}
	if n := h.google.Requests(rtA); n != 1 {
		t.Errorf("grant %s used its old refresh token %d times, want once", a, n)
	}

	// Two grants sharing one client Secret: a change to it wakes both.
	h.secret("shared-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	shared := func(spec *oauthv1alpha1.GoogleOAuthGrantSpec) { spec.ClientSecretRef.Name = "shared-client" }
	rt1, rt2 := h.credentials("shared-1"), h.credentials("shared-2")
	h.grant("shared-1", shared)
	h.grant("shared-2", shared)
	h.waitReady("shared-1")
	h.waitReady("shared-2")
	c := &corev1.Secret{}
	h.Get("shared-client", c)
	c.Data["note"] = []byte("rotated by the platform team")
	if err := h.C.Update(h.Ctx, c); err != nil {
		t.Fatal(err)
	}
	h.Eventually(10*time.Second, "both grants to refresh with the changed client", func() (bool, string) {
		return h.google.Requests(rt1) >= 2 && h.google.Requests(rt2) >= 2, fmt.Sprintf("%d and %d requests", h.google.Requests(rt1), h.google.Requests(rt2))
	})
}
