package plan

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// A Cross-Account Protection event's only record is the grant's derived Secret
// (internal/derivedsecret.Withdraw: the token withdrawn, the reason and Google's words
// beside it); the rules here derive the grant's status from it, so the reconciler alone
// writes that status. Security reasons are permanent, and stricter than a rejected refresh
// token: not even a manual refresh makes a token request until the grant's Secrets or spec
// change (Google asked us to stop using the token).

// securityWithdrawn is the security reason the derived Secret records, "" when none or when a
// token request with changed inputs answered after the withdrawal (its failure is the
// grant's state then; a success rewrites the Secret).
func securityWithdrawn(o Observation) string {
	w := o.Withdrawal
	if w == nil || !slices.Contains(oauthv1alpha1.SecurityReasons, w.Reason) {
		return ""
	}
	if f := o.Grant.GrantStatus().LastFailureTime; f != nil && f.After(w.Recorded) {
		return ""
	}
	return w.Reason
}

// accountEnabled: account-enabled lifted an AccountDisabled withdrawal the status still shows.
func accountEnabled(o Observation, ready *metav1.Condition) bool {
	return o.Withdrawal != nil && o.Withdrawal.Reason == oauthv1alpha1.ReasonAccountEnabled &&
		ready != nil && ready.Reason == oauthv1alpha1.ReasonAccountDisabled
}

// securityRevoke sets the status of a grant a security event revoked: Revoked=True,
// Ready=False with the event's reason, the token expired at the event, no refresh scheduled,
// and a Warning event when Ready changes (once per occurrence, from the leader only).
func (r *reporter) securityRevoke(reason string) {
	g, w := r.o.Grant, r.o.Withdrawal
	why := w.Message
	if why == "" {
		why = fmt.Sprintf("Google revoked this grant (Cross-Account Protection security event, reason %s).", reason)
	}
	r.st.RefreshTime = nil
	if !w.At.IsZero() {
		r.st.ExpiresAt = metaTime(w.At)
	}
	r.setCondition(oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, reason, why)
	fix := fmt.Sprintf("Obtain a new refresh token with a new consent: %s (it stores it in Secret %q key %q).", ReauthorizeCommand(g), g.RefreshTokenSecretName(), g.RefreshTokenKey())
	msg := fmt.Sprintf("%s The access token in Secret %q was withdrawn (expiry set to the event's time). No token requests are made until the grant's Secrets or spec change. %s",
		why, g.TargetSecretName(), fix)
	if r.setReady(metav1.ConditionFalse, reason, msg) {
		r.event("Warning", reason, "SecurityEvent", why+" The access token was withdrawn; a new consent is needed.")
	}
}

// securityEnabled records, before the outcome of the token request account-enabled led to,
// that the AccountDisabled revocation was lifted.
func (r *reporter) securityEnabled() {
	c := meta.FindStatusCondition(r.st.Conditions, oauthv1alpha1.ConditionRevoked)
	if r.o.Withdrawal == nil || r.o.Withdrawal.Reason != oauthv1alpha1.ReasonAccountEnabled || c == nil || c.Reason != oauthv1alpha1.ReasonAccountDisabled {
		return
	}
	why := r.o.Withdrawal.Message
	if why == "" {
		why = "Google re-enabled the account (Cross-Account Protection account-enabled event)."
	}
	r.setCondition(oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, oauthv1alpha1.ReasonAccountEnabled, why)
	r.event("Normal", oauthv1alpha1.ReasonAccountEnabled, "SecurityEvent", why)
}
