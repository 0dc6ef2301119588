package plan

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

func consentGrant(mutate ...func(*oauthv1alpha1.GoogleOAuthGrant)) *oauthv1alpha1.GoogleOAuthGrant {
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns"}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "c"},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "r"},
		Scopes:                []string{"a", "b"},
	}}
	for _, m := range mutate {
		m(g)
	}
	return g
}

func cond(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason}
}

func TestNeedsConsent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		g       *oauthv1alpha1.GoogleOAuthGrant
		st      oauthv1alpha1.GrantStatus
		why     string
		scopes  []string
		needNil bool
	}{
		{name: "no refresh token", g: consentGrant(), st: oauthv1alpha1.GrantStatus{Conditions: []metav1.Condition{cond("Ready", "False", oauthv1alpha1.ReasonConsentRequired)}}, why: NeedNoRefreshToken, scopes: []string{"a", "b"}},
		{name: "revoked, any reason", g: consentGrant(), st: oauthv1alpha1.GrantStatus{Conditions: []metav1.Condition{cond("Ready", "False", "TokenRevokedByGoogle"), cond("Revoked", "True", "TokenRevokedByGoogle")}}, why: NeedRevoked, scopes: []string{"a", "b"}},
		// Without include_granted_scopes a consent must ask for all of spec.scopes (issue 28).
		{name: "missing scopes: all of spec.scopes", g: consentGrant(), st: oauthv1alpha1.GrantStatus{GrantedScopes: []string{"a"}, Conditions: []metav1.Condition{cond("Ready", "True", "TokenValid"), cond("ScopesGranted", "False", "MissingScopes")}}, why: NeedMissingScopes, scopes: []string{"a", "b"}},
		{name: "Google refused spec.scopes (invalid_scope)", g: consentGrant(), st: oauthv1alpha1.GrantStatus{Conditions: []metav1.Condition{cond("Ready", "False", "TokenRequestRejected"), cond("ScopesGranted", "False", "MissingScopes")}}, why: NeedMissingScopes, scopes: []string{"a", "b"}},
		{name: "excess scopes", g: consentGrant(), st: oauthv1alpha1.GrantStatus{GrantedScopes: []string{"a", "b"}, Conditions: []metav1.Condition{cond("Ready", "False", "ExcessScopes"), cond("ScopesGranted", "True", "AllScopesGranted")}}, why: NeedExcessScopes, scopes: []string{"a", "b"}},
		{name: "healthy", g: consentGrant(), st: oauthv1alpha1.GrantStatus{Conditions: []metav1.Condition{cond("Ready", "True", "TokenValid"), cond("ScopesGranted", "True", "AllScopesGranted")}}, needNil: true},
		{name: "client unusable", g: consentGrant(), st: oauthv1alpha1.GrantStatus{Conditions: []metav1.Condition{cond("Ready", "False", "InvalidClient"), cond("Revoked", "True", "InvalidGrant")}}, needNil: true},
		{name: "no scopes", g: consentGrant(func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.Scopes = nil }), st: oauthv1alpha1.GrantStatus{Conditions: []metav1.Condition{cond("Revoked", "True", "InvalidGrant")}}, needNil: true},
		{name: "ADC form", g: consentGrant(func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Spec.ClientSecretRef, g.Spec.RefreshTokenSecretRef = nil, nil
			g.Spec.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: "adc"}
		}), st: oauthv1alpha1.GrantStatus{Conditions: []metav1.Condition{cond("Revoked", "True", "InvalidGrant")}}, needNil: true},
		{name: "clientRef is eligible", g: consentGrant(func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Spec.ClientSecretRef, g.Spec.ClientRef = nil, &oauthv1alpha1.ClientReference{Name: "shared"}
		}), st: oauthv1alpha1.GrantStatus{Conditions: []metav1.Condition{cond("Revoked", "True", "InvalidGrant")}}, why: NeedRevoked, scopes: []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := NeedsConsent(tc.g, &tc.st)
			if tc.needNil {
				if n != nil {
					t.Fatalf("need = %+v, want none", n)
				}
				return
			}
			if n == nil || n.Why != tc.why || !slices.Equal(n.Scopes, tc.scopes) {
				t.Fatalf("need = %+v", n)
			}
		})
	}
}

// A missing refresh token says ConsentRequired (permanent) only with consent enabled and
// an eligible grant; a missing client Secret still says SecretNotFound; without consent
// status.consent is cleared.
func TestRecordConsentRequired(t *testing.T) {
	missing := &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound, Message: `Secret "r" not found`}
	for _, tc := range []struct {
		name       string
		enabled    bool
		rtMissing  bool
		g          *oauthv1alpha1.GoogleOAuthGrant
		wantReason string
	}{
		{"enabled, refresh token missing", true, true, consentGrant(), oauthv1alpha1.ReasonConsentRequired},
		{"disabled", false, true, consentGrant(), oauthv1alpha1.ReasonSecretNotFound},
		{"client Secret missing", true, false, consentGrant(), oauthv1alpha1.ReasonSecretNotFound},
		{"not eligible: no scopes", true, true, consentGrant(func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.Scopes = nil }), oauthv1alpha1.ReasonSecretNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.g.Status.Consent = oauthv1alpha1.ConsentRequired
			rep := Record(Observation{Grant: tc.g, ConsentEnabled: tc.enabled}, Outcome{Problem: missing, RefreshTokenMissing: tc.rtMissing})
			var ready *metav1.Condition
			for i := range rep.Status.Conditions {
				if rep.Status.Conditions[i].Type == "Ready" {
					ready = &rep.Status.Conditions[i]
				}
			}
			if ready == nil || ready.Reason != tc.wantReason {
				t.Fatalf("Ready = %+v", ready)
			}
			if !PermanentReason(ready.Reason) {
				t.Errorf("%s is not permanent: a grant without a token would retry in a loop", ready.Reason)
			}
			if keep := tc.wantReason == oauthv1alpha1.ReasonConsentRequired; (rep.Status.Consent != "") != keep {
				t.Errorf("consent = %q", rep.Status.Consent)
			}
		})
	}
}

// A revoked grant's Ready message names the consent link when consent links are on.
func TestRevokedMessageNamesConsentLink(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		rep := Record(Observation{Grant: consentGrant(), ConsentEnabled: enabled}, Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.InvalidGrant, Code: "invalid_grant"}})
		var msg string
		for _, c := range rep.Status.Conditions {
			if c.Type == "Ready" {
				msg = c.Message
			}
		}
		if got := strings.Contains(msg, "consent-link g -n ns"); got != enabled {
			t.Errorf("consent enabled %v: message %q", enabled, msg)
		}
	}
}

// Consent links turned on after a grant reported its refresh token missing (or off after it
// said ConsentRequired): the inputs are read again once, so the reason and link fit; a
// missing Secret recorded with links on is not read again in a loop.
func TestConsentSwitched(t *testing.T) {
	missing := func(reason, fp string) func(*oauthv1alpha1.GoogleOAuthGrant) {
		return func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Status.InputsFingerprint = fp
			g.Status.Conditions = []metav1.Condition{cond("Ready", metav1.ConditionFalse, reason)}
		}
	}
	for _, tc := range []struct {
		name        string
		enabled     bool
		absent      bool // the caches show no refresh-token Secret
		g           *oauthv1alpha1.GoogleOAuthGrant
		wantRefresh bool
	}{
		{"turned on: SecretNotFound from before, no refresh-token Secret", true, true, consentGrant(missing(oauthv1alpha1.ReasonSecretNotFound, "fp")), true},
		{"turned on: SecretKeyMissing from before", true, false, consentGrant(missing(oauthv1alpha1.ReasonSecretKeyMissing, "fp")), true},
		{"on: SecretNotFound with the refresh-token Secret there (the client's is missing)", true, false, consentGrant(missing(oauthv1alpha1.ReasonSecretNotFound, "fp")), false},
		{"on: ConsentRequired", true, true, consentGrant(missing(oauthv1alpha1.ReasonConsentRequired, "fp")), false},
		{"turned off: ConsentRequired", false, true, consentGrant(missing(oauthv1alpha1.ReasonConsentRequired, "fp")), true},
		{"off: SecretNotFound", false, true, consentGrant(missing(oauthv1alpha1.ReasonSecretNotFound, "fp")), false},
		{"on: not eligible (no scopes)", true, true, consentGrant(missing(oauthv1alpha1.ReasonSecretNotFound, "fp"), func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.Scopes = nil }), false},
		{"on: other permanent reason", true, true, consentGrant(missing(oauthv1alpha1.ReasonInvalidClientSecret, "fp")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(Observation{Grant: tc.g, ConsentEnabled: tc.enabled, RefreshTokenAbsent: tc.absent, Fingerprint: "fp"})
			if p.Refresh != tc.wantRefresh {
				t.Fatalf("Refresh = %v (%s), want %v", p.Refresh, p.Why, tc.wantRefresh)
			}
		})
	}
	// What Record writes with links on and the refresh token missing (ConsentRequired)
	// stops the next Decide from reading again.
	g := consentGrant(missing(oauthv1alpha1.ReasonSecretNotFound, "fp"))
	rep := Record(Observation{Grant: g, ConsentEnabled: true}, Outcome{Fingerprint: "fp", RefreshTokenMissing: true,
		Problem: &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound, Message: `Secret "r" not found`}})
	g.Status = rep.Status
	if p := Decide(Observation{Grant: g, ConsentEnabled: true, RefreshTokenAbsent: true, Fingerprint: "fp"}); p.Refresh {
		t.Fatalf("read again after recording with links on: %s", p.Why)
	}
}
