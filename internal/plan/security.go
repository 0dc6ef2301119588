package plan

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Reasons of Google's Cross-Account Protection security events (a contract): the Ready and
// Revoked reasons of a grant an event revoked, and the reasons of the events it records.
const (
	ReasonTokenRevokedByGoogle  = "TokenRevokedByGoogle"
	ReasonTokensRevokedByGoogle = "TokensRevokedByGoogle"
	ReasonAccountDisabled       = "AccountDisabled"
	// ReasonAccountEnabled is the Revoked=False reason once account-enabled lifted AccountDisabled.
	ReasonAccountEnabled = "AccountEnabled"
	// Warning events only: Google does not revoke OAuth tokens for these.
	ReasonSessionsRevoked                 = "SessionsRevokedByGoogle"
	ReasonAccountCredentialChangeRequired = "AccountCredentialChangeRequired"
)

// SecurityReasons are the Ready reasons a revoking security event sets. Like a rejected
// refresh token they are permanent, and stricter: not even a manual refresh makes a token
// request until the grant's Secrets or spec change (Google asked us to stop using the token).
var SecurityReasons = []string{ReasonTokenRevokedByGoogle, ReasonTokensRevokedByGoogle, ReasonAccountDisabled}

// SecurityStatusGrace is how long after a token was withdrawn the reconciler waits for the
// receiver's status write before writing the revocation itself (a refresh's status write that
// raced the event's can lose it).
const SecurityStatusGrace = 10 * time.Second

// securityRevoked reports whether the grant's Ready condition records a revoking security event.
func securityRevoked(ready *metav1.Condition) bool {
	return ready != nil && ready.Status == metav1.ConditionFalse && slices.Contains(SecurityReasons, ready.Reason)
}

// securityLifted: account-enabled lifted the grant's AccountDisabled (Revoked=False/AccountEnabled).
func securityLifted(g *oauthv1alpha1.GoogleOAuthGrant) bool {
	c := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionRevoked)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == ReasonAccountEnabled
}

// SecurityRevoke is g's status after a revoking security event at time at (reason one of
// SecurityReasons): Revoked=True, Ready=False, the token expired at the event, no refresh
// scheduled. changed is false when the status already records this revocation (a redelivery,
// or another replica was first), so nothing needs writing and no event is due.
func SecurityRevoke(g *oauthv1alpha1.GoogleOAuthGrant, now, at time.Time, reason, why string) (st oauthv1alpha1.GoogleOAuthGrantStatus, changed bool) {
	ready := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
	if ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == reason &&
		meta.IsStatusConditionTrue(g.Status.Conditions, oauthv1alpha1.ConditionRevoked) {
		return g.Status, false
	}
	r := &reporter{o: Observation{Now: now, Grant: g}, st: g.Status.DeepCopy()}
	r.st.ExpiresAt = metaTime(at)
	r.securityRevoke(reason, why)
	return r.finish(0).Status, true
}

// securityRevoke sets the conditions of a grant a security event revoked, with a Warning
// event when Ready changes.
func (r *reporter) securityRevoke(reason, why string) {
	g := r.o.Grant
	r.st.RefreshTime = nil
	r.setCondition(oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, reason, why)
	fix := fmt.Sprintf("Obtain a new refresh token with a new consent: %s (it stores it in Secret %q key %q).", ReauthorizeCommand(g), g.RefreshTokenSecretName(), g.RefreshTokenKey())
	msg := fmt.Sprintf("%s The access token in Secret %q was withdrawn (expiry set to the event's time). No token requests are made until the grant's Secrets or spec change. %s",
		why, g.TargetSecretName(), fix)
	if r.setReady(metav1.ConditionFalse, reason, msg) {
		r.event("Warning", reason, "SecurityEvent", why+" The access token was withdrawn; a new consent is needed.")
	}
}

// SecurityEnable is g's status after account-enabled: an AccountDisabled revocation is lifted
// and the grant, no longer Ready, requests a token at its next reconcile. changed is false
// when the grant was not disabled by an event.
func SecurityEnable(g *oauthv1alpha1.GoogleOAuthGrant, now time.Time, why string) (st oauthv1alpha1.GoogleOAuthGrantStatus, changed bool) {
	ready := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
	if ready == nil || ready.Reason != ReasonAccountDisabled {
		return g.Status, false
	}
	r := &reporter{o: Observation{Now: now, Grant: g}, st: g.Status.DeepCopy()}
	r.setCondition(oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, ReasonAccountEnabled, why)
	r.setReady(metav1.ConditionFalse, oauthv1alpha1.ReasonPending, why)
	return r.finish(0).Status, true
}
