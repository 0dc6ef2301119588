package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

// TestTokenEndpointFaults: whatever the token endpoint does wrong, the operator keeps the
// last good token while it is valid, never publishes a bad one, says precisely what is
// wrong, backs off (a bounded number of requests), and recovers by itself.
func TestTokenEndpointFaults(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	fail := func(n int, f fakegoogle.Failure) func(*fakegoogle.Server) (func(), error) {
		return func(g *fakegoogle.Server) (func(), error) { g.FailNext(n, f); return func() {}, nil }
	}
	ok200 := func(body string) fakegoogle.Failure { return fakegoogle.Failure{Status: 200, Body: body} }
	for _, tc := range []struct {
		name   string
		inject func(*fakegoogle.Server) (recover func(), err error)
		says   string // in the Ready message while failing
		// provider: run for an OAuthGrant too (its requests go through internal/oauthtoken
		// and x/oauth2, not Google's client), with saysProvider in its Ready message.
		provider     bool
		saysProvider string
	}{
		{"connection refused", func(g *fakegoogle.Server) (func(), error) {
			g.Pause()
			return func() {
				if err := g.Resume(); err != nil {
					t.Errorf("resume: %v", err)
				}
			}, nil
		}, "connection refused", false, ""},
		{"hanging", fail(2, fakegoogle.Failure{Hang: true}), "Timeout", true, "timeout awaiting response headers"},
		{"500", fail(2, fakegoogle.Failure{Status: 500}), "HTTP 500", true, "HTTP 500"},
		{"502", fail(2, fakegoogle.Failure{Status: 502, Body: "<html>Bad Gateway</html>"}), "HTTP 502", false, ""},
		{"503", fail(3, fakegoogle.Failure{Status: 503}), "HTTP 503", false, ""},
		{"429 with Retry-After", fail(2, fakegoogle.Failure{Status: 429, RetryAfter: "2"}), "Retry-After 2s", true, "Retry-After 2s"},
		{"429 without Retry-After", fail(2, fakegoogle.Failure{Status: 429}), "HTTP 429", false, ""},
		{"malformed JSON", fail(2, ok200(`{"access_token": "ya29.half`)), "parse", true, "parse"},
		{"no access_token", fail(2, ok200(`{"expires_in": 3599, "token_type": "Bearer"}`)), "missing access_token", false, ""},
		{"expires_in missing", fail(2, ok200(`{"access_token": "ya29.bad-missing", "token_type": "Bearer"}`)), "expires_in missing, zero or negative", true, "expires_in missing, zero or negative"},
		{"expires_in zero", fail(2, ok200(`{"access_token": "ya29.bad-zero", "token_type": "Bearer", "expires_in": 0}`)), "expires_in missing, zero or negative", false, ""},
		{"expires_in negative", fail(2, ok200(`{"access_token": "ya29.bad-negative", "token_type": "Bearer", "expires_in": -60}`)), "expires_in missing, zero or negative", false, ""},
		{"expires_in ten years", fail(2, ok200(`{"access_token": "ya29.bad-forever", "token_type": "Bearer", "expires_in": 315360000}`)), "longer than", false, ""},
		{"token_type mac", fail(2, ok200(`{"access_token": "ya29.bad-mac", "token_type": "mac", "expires_in": 3599}`)), "is not Bearer", false, ""},
		{"huge body", fail(2, ok200(`{"access_token": "ya29.bad-huge", "padding": "`+strings.Repeat("x", 3<<20)+`"}`)), "parse", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.google.SetLifetime(20 * time.Second)
			rt := h.credentials("g")
			h.grant("g", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
				s.RefreshBefore = &metav1.Duration{Duration: 16 * time.Second}
			})
			h.waitReady("g")
			recover, err := tc.inject(h.google)
			if err != nil {
				t.Fatal(err)
			}
			// A refresh may have completed just before the fault: the good token is whatever
			// the Secret holds now.
			goodExpiry := h.GetGrant("g").Status.ExpiresAt.Time
			h.Eventually(30*time.Second, "two failed attempts reported", func() (bool, string) {
				s := h.derived("g-access-token")
				if !h.google.AccessTokenValid(string(s.Data["access_token"])) {
					t.Fatalf("the derived Secret holds a token the API rejects while the endpoint is failing")
				}
				g := h.GetGrant("g")
				goodExpiry = g.Status.ExpiresAt.Time
				ready := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
				if time.Now().Before(goodExpiry.Add(-time.Second)) && ready.Status != metav1.ConditionTrue {
					t.Fatalf("Ready turned %s/%s while the last good token was valid: %s", ready.Status, ready.Reason, ready.Message)
				}
				return g.Status.FailedRefreshAttempts >= 2 && strings.Contains(ready.Message, tc.says), ready.Message
			})
			h.waitEvent("g", "Warning/RefreshFailed")
			recover()
			h.Eventually(30*time.Second, "recovery", func() (bool, string) {
				g := h.GetGrant("g")
				s := h.derived("g-access-token")
				return g.Status.FailedRefreshAttempts == 0 && g.Status.ExpiresAt.After(goodExpiry) &&
					h.google.AccessTokenValid(string(s.Data["access_token"])), fmt.Sprintf("failedRefreshAttempts=%d", g.Status.FailedRefreshAttempts)
			})
			h.waitReady("g")
			if n := h.google.Requests(rt); n > 8 {
				t.Errorf("%d token requests for one fault: retries are not bounded", n)
			}
			for _, bad := range []string{"ya29.bad", "ya29.half"} {
				s := &corev1.Secret{}
				h.Get("g-access-token", s)
				if strings.Contains(string(s.Data["token.json"]), bad) {
					t.Errorf("a bad token reached the derived Secret")
				}
			}
		})
		if !tc.provider {
			continue
		}
		t.Run("OAuthGrant/"+tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			defer func() {
				if t.Failed() {
					t.Log(h.logs.String())
				}
			}()
			h.google.SetLifetime(20 * time.Second)
			rt := h.providerGrant("p", []string{analytics}, func(s *oauthv1alpha1.OAuthGrantSpec) {
				s.RefreshBefore = &metav1.Duration{Duration: 16 * time.Second}
			})
			h.Eventually(30*time.Second, "Ready", func() (bool, string) {
				got := h.providerCondition("p", oauthv1alpha1.ConditionReady)
				return got == "True/"+oauthv1alpha1.ReasonTokenValid, got
			})
			recover, err := tc.inject(h.google)
			if err != nil {
				t.Fatal(err)
			}
			goodExpiry := h.providerStatus("p").ExpiresAt.Time
			h.Eventually(30*time.Second, "two failed attempts reported", func() (bool, string) {
				s := h.derived("p-access-token")
				if !h.google.AccessTokenValid(string(s.Data["access_token"])) {
					t.Fatalf("the derived Secret holds a token the API rejects while the endpoint is failing")
				}
				st := h.providerStatus("p")
				goodExpiry = st.ExpiresAt.Time
				ready := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
				if time.Now().Before(goodExpiry.Add(-time.Second)) && ready.Status != metav1.ConditionTrue {
					t.Fatalf("Ready turned %s/%s while the last good token was valid: %s", ready.Status, ready.Reason, ready.Message)
				}
				return st.FailedRefreshAttempts >= 2 && strings.Contains(ready.Message, tc.saysProvider), ready.Message
			})
			h.waitEvent("p", "Warning/RefreshFailed")
			recover()
			h.Eventually(30*time.Second, "recovery", func() (bool, string) {
				st := h.providerStatus("p")
				s := h.derived("p-access-token")
				return st.FailedRefreshAttempts == 0 && st.ExpiresAt.After(goodExpiry) &&
					h.google.AccessTokenValid(string(s.Data["access_token"])), fmt.Sprintf("failedRefreshAttempts=%d", st.FailedRefreshAttempts)
			})
			if n := h.google.Requests(rt); n > 8 {
				t.Errorf("%d token requests for one fault: retries are not bounded", n)
			}
		})
	}
}
