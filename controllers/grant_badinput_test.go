package controllers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

func (h *harness) rawSecret(name string, data map[string][]byte) {
	h.T.Helper()
	h.recordUserSecret(data)
	if err := h.C.Create(h.Ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name}, Data: data}); err != nil {
		h.T.Fatal(err)
	}
}

// TestBadInput: every malformed input gets a precise reason and a message naming what is
// wrong, and no Secret anywhere is changed or lost.
func TestBadInput(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	goodClient := map[string][]byte{"client_id": []byte(clientID), "client_secret": []byte(clientSecret)}
	rt := func() []byte { return []byte(h.google.NewRefreshToken(clientID, analytics)) }
	clientJSON := func(js string) map[string][]byte { return map[string][]byte{"client_secret.json": []byte(js)} }
	adcSpec := func(s *oauthv1alpha1.GoogleOAuthGrantSpec, name string) {
		s.ClientSecretRef, s.RefreshTokenSecretRef = nil, nil
		s.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: name}
	}
	h.google.AddClient("other.apps.googleusercontent.com", "GOCSPX-other")
	revoked := h.google.NewRefreshToken(clientID, analytics)
	h.google.RevokeRefreshToken(revoked)

	// A healthy grant whose derived Secret others will collide with.
	h.rawSecret("owner-client", goodClient)
	h.rawSecret("owner-rt", map[string][]byte{"refresh_token": rt()})
	h.grant("owner", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.RefreshTokenSecretRef.Name = "owner-rt" })
	h.waitReady("owner")
	h.rawSecret("foreign", map[string][]byte{"token": []byte("foreign-value-7Hq2xW")})

	type tc struct {
		name    string
		client  map[string][]byte // nil: no client Secret
		rt      map[string][]byte // nil: no refresh-token Secret
		spec    func(*oauthv1alpha1.GoogleOAuthGrantSpec)
		reason  string // Ready reason; TokenValid means Ready=True
		message string
	}
	cases := []tc{
		{"no-client-secret", nil, map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonSecretNotFound, `"no-client-secret-client"`},
		{"no-rt-secret", goodClient, nil, nil, oauthv1alpha1.ReasonSecretNotFound, `"no-rt-secret-rt"`},
		{"empty-client", map[string][]byte{}, map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonSecretKeyMissing, `"client_id"`},
		{"empty-client-id", map[string][]byte{"client_id": {}, "client_secret": []byte(clientSecret)}, map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonSecretKeyMissing, `"client_id" (the value is empty)`},
		{"blank-client-secret", map[string][]byte{"client_id": []byte(clientID), "client_secret": []byte(" \n\t")}, map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonSecretKeyMissing, `"client_secret" (the value is empty)`},
		{"binary-client-secret", map[string][]byte{"client_id": []byte(clientID), "client_secret": {0xff, 0xfe, 0x00}}, map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonSecretKeyMissing, "not UTF-8"},
		{"no-rt-key", goodClient, map[string][]byte{"token": rt()}, nil, oauthv1alpha1.ReasonSecretKeyMissing, `"refresh_token" (the key is absent)`},
		{"empty-rt", goodClient, map[string][]byte{"refresh_token": {}}, nil, oauthv1alpha1.ReasonSecretKeyMissing, "the value is empty"},
		{"blank-rt", goodClient, map[string][]byte{"refresh_token": []byte("\n \n")}, nil, oauthv1alpha1.ReasonSecretKeyMissing, "the value is empty"},
		{"binary-rt", goodClient, map[string][]byte{"refresh_token": {0xc3, 0x28, 0xa0}}, nil, oauthv1alpha1.ReasonSecretKeyMissing, "not UTF-8"},
		{"two-rts-pasted", goodClient, map[string][]byte{"refresh_token": []byte("1//a\n1//b")}, nil, oauthv1alpha1.ReasonSecretKeyMissing, "whitespace inside"},
		{"rt-trailing-newline", goodClient, map[string][]byte{"refresh_token": append(rt(), '\n')}, nil, oauthv1alpha1.ReasonTokenValid, ""},
		{"rt-crlf", goodClient, map[string][]byte{"refresh_token": append(rt(), '\r', '\n')}, nil, oauthv1alpha1.ReasonTokenValid, ""},
		{"custom-key-missing", goodClient, map[string][]byte{"refresh_token": rt()}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.RefreshTokenSecretRef.Key = "token" }, oauthv1alpha1.ReasonSecretKeyMissing, `"token"`},
		{"json-not-json", clientJSON(`{"installed": {`), map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonInvalidClientSecret, "is not valid JSON"},
		{"json-no-web-installed", clientJSON(`{"type": "service_account", "client_id": "x"}`), map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonInvalidClientSecret, `neither a "web" nor an "installed"`},
		{"json-no-client-secret", clientJSON(`{"web": {"client_id": "` + clientID + `"}}`), map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonInvalidClientSecret, "lacks client_secret"},
		{"json-no-client-id", clientJSON(`{"web": {"client_secret": "` + clientSecret + `"}}`), map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonInvalidClientSecret, "lacks client_id"},
		{"json-empty", clientJSON(""), map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonInvalidClientSecret, "is not valid JSON"},
		{"adc-service-account", nil, map[string][]byte{"credentials.json": []byte(`{"type": "service_account", "client_id": "x", "client_secret": "y", "refresh_token": "z"}`)},
			func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { adcSpec(s, "adc-service-account-rt") }, oauthv1alpha1.ReasonInvalidClientSecret, `not "authorized_user"`},
		{"adc-no-rt", nil, map[string][]byte{"credentials.json": []byte(`{"type": "authorized_user", "client_id": "` + clientID + `", "client_secret": "` + clientSecret + `"}`)},
			func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { adcSpec(s, "adc-no-rt-rt") }, oauthv1alpha1.ReasonInvalidClientSecret, "lacks refresh_token"},
		{"unknown-client", map[string][]byte{"client_id": []byte("nope.apps.googleusercontent.com"), "client_secret": []byte("x-secret-value")}, map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonInvalidClient, "invalid_client"},
		{"rt-of-other-client", map[string][]byte{"client_id": []byte("other.apps.googleusercontent.com"), "client_secret": []byte("GOCSPX-other")}, map[string][]byte{"refresh_token": rt()}, nil, oauthv1alpha1.ReasonInvalidClient, "unauthorized_client"},
		{"revoked-rt", goodClient, map[string][]byte{"refresh_token": []byte(revoked)}, nil, oauthv1alpha1.ReasonInvalidGrant, "Token has been expired or revoked."},
		{"target-unowned", goodClient, map[string][]byte{"refresh_token": rt()}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.AccessTokenSecretName = "foreign" }, oauthv1alpha1.ReasonTargetSecretConflict, `"foreign" already exists`},
		{"target-other-grant", goodClient, map[string][]byte{"refresh_token": rt()}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.AccessTokenSecretName = "owner-access-token" }, oauthv1alpha1.ReasonTargetSecretConflict, `controller GoogleOAuthGrant "owner"`},
		{"target-is-rt", goodClient, map[string][]byte{"refresh_token": rt()}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.AccessTokenSecretName = "target-is-rt-rt" }, oauthv1alpha1.ReasonTargetSecretConflict, "also a referenced Secret"},
		{"target-is-client", goodClient, map[string][]byte{"refresh_token": rt()}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.AccessTokenSecretName = "target-is-client-client" }, oauthv1alpha1.ReasonTargetSecretConflict, "also a referenced Secret"},
	}
	// The cases' Secrets and grants are created with no manager running, and every Secret
	// in the namespace is recorded before one starts: whatever it does is after the snapshot.
	h.stopManager()
	for _, c := range cases {
		if c.client != nil {
			h.rawSecret(c.name+"-client", c.client)
		}
		if c.rt != nil {
			h.rawSecret(c.name+"-rt", c.rt)
		}
		h.grant(c.name, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
			s.RefreshTokenSecretRef.Name = c.name + "-rt"
			if c.spec != nil {
				c.spec(s)
			}
		})
	}
	before := map[string]string{}
	var secrets corev1.SecretList
	if err := h.C.List(h.Ctx, &secrets, client.InNamespace(h.Name)); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		before[s.Name] = s.ResourceVersion
	}
	// Derived Secrets are grantkeeper's to write: the owner's is the only one yet.
	derived := map[string]bool{"owner-access-token": true}
	h.startManager()

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status := metav1.ConditionFalse
			if c.reason == oauthv1alpha1.ReasonTokenValid {
				status = metav1.ConditionTrue
			}
			g := h.waitCondition(c.name, oauthv1alpha1.ConditionReady, status, c.reason)
			msg := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady).Message
			if !strings.Contains(msg, c.message) {
				t.Errorf("message %q does not contain %q", msg, c.message)
			}
		})
	}

	// Two grants pointing at one derived Secret name: the first keeps it, the second is told.
	h.rawSecret("twin-a-client", goodClient)
	h.rawSecret("twin-a-rt", map[string][]byte{"refresh_token": rt()})
	h.grant("twin-a", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshTokenSecretRef.Name, s.AccessTokenSecretName = "twin-a-rt", "twin-token"
	})
	h.waitReady("twin-a")
	h.rawSecret("twin-b-client", goodClient)
	h.rawSecret("twin-b-rt", map[string][]byte{"refresh_token": rt()})
	h.grant("twin-b", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshTokenSecretRef.Name, s.AccessTokenSecretName = "twin-b-rt", "twin-token"
	})
	h.waitCondition("twin-b", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonTargetSecretConflict)
	h.waitReady("twin-a")

	// No Secret that existed before the manager started was changed, derived Secrets excepted
	// by name (a user Secret that the controller labelled as its own is still a user Secret).
	for name, rv := range before {
		s := &corev1.Secret{}
		h.Get(name, s)
		if s.ResourceVersion != rv && !derived[name] {
			t.Errorf("Secret %s was changed (resourceVersion %s -> %s; labels %v)", name, rv, s.ResourceVersion, s.Labels)
		}
	}
	t.Logf("%d malformed or conflicting inputs, each with its reason and message; %d Secrets unchanged", len(cases)+1, len(before))
}

// TestSpecChangeDuringRefresh: the spec changes while a token request is in flight; the
// grant ends up reflecting the new spec, and the published token is one issued for the new
// refresh token.
func TestSpecChangeDuringRefresh(t *testing.T) {
	h := newHarness(t)
	h.google.SetLatency(time.Second) // under the harness's 2 s request timeout
	rt1 := h.credentials("moving")
	rt2 := h.google.NewRefreshToken(clientID, analytics)
	h.secret("moving-rt2", map[string]string{"refresh_token": rt2})
	h.grant("moving")
	h.Eventually(10*time.Second, "a token request in flight", func() (bool, string) {
		return h.google.TotalRequests() >= 1, ""
	})
	g := h.GetGrant("moving")
	g.Spec.RefreshTokenSecretRef.Name = "moving-rt2"
	if err := h.C.Update(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	first := h.google.Exchanges()[0]
	if first.RefreshToken != rt1 || (!first.Ended.IsZero() && first.Ended.Before(changed)) {
		t.Fatalf("the spec change (at %s) did not land while the first request was in flight (%+v): the test proves nothing", changed.Format(time.RFC3339Nano), first)
	}
	h.Eventually(30*time.Second, "the grant Ready for the new spec, with a token from the new refresh token", func() (bool, string) {
		g := h.GetGrant("moving")
		ready := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
		ok := ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == g.Generation && g.Status.ObservedGeneration == g.Generation
		s := &corev1.Secret{}
		if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "moving-access-token"}, s); err != nil {
			return false, err.Error()
		}
		at := string(s.Data["access_token"])
		fromNew := slices.ContainsFunc(h.google.AccessTokensFor(rt2), func(i fakegoogle.IssuedToken) bool { return i.AccessToken == at })
		return ok && fromNew, fmt.Sprintf("generation %d, Ready %+v, published token from the new refresh token: %v", g.Generation, ready, fromNew)
	})
	h.poke("moving")
	at := string(h.derived("moving-access-token").Data["access_token"])
	if !slices.ContainsFunc(h.google.AccessTokensFor(rt2), func(i fakegoogle.IssuedToken) bool { return i.AccessToken == at }) {
		t.Error("after settling, the derived Secret holds a token not issued for the new refresh token")
	}
}
