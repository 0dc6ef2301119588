package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/decision"
)

// settle updates the status when no token request is needed: a target conflict, a token
// that expired while refreshes fail, the scope check, and the time of the next look.
func (r *GoogleOAuthGrantReconciler) settle(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, obs *observation, d decision.Decision) (ctrl.Result, error) {
	before := g.Status.DeepCopy()
	now := r.Clock.Now()
	ready := readyCondition(g)
	switch {
	case obs.conflict != "":
		if r.setReady(g, before, metav1.ConditionFalse, oauthv1alpha1.ReasonTargetSecretConflict, obs.conflict) {
			r.event(g, corev1.EventTypeWarning, oauthv1alpha1.ReasonTargetSecretConflict, "Publish", "%s", obs.conflict)
		}
	case ready != nil && ready.Status == metav1.ConditionTrue && !(obs.facts.HaveToken && now.Before(obs.token.Expiry)):
		// Only reached while backing off: the token ran out before a refresh succeeded.
		r.setReady(g, before, metav1.ConditionFalse, oauthv1alpha1.ReasonTokenEndpointError,
			fmt.Sprintf("The access token expired at %s and refreshing has failed %d time(s); retrying at %s.",
				formatTime(obs.token.Expiry), g.Status.FailedRefreshAttempts, formatTime(timeOrZero(g.Status.RefreshTime))))
	}
	return r.writeStatus(ctx, g, before, d.RequeueAfter)
}

// writeStatus derives the conditions that follow from the rest of the status, writes the
// status if anything changed, and schedules the next reconcile.
func (r *GoogleOAuthGrantReconciler) writeStatus(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, before *oauthv1alpha1.GoogleOAuthGrantStatus, requeue time.Duration) (ctrl.Result, error) {
	st := &g.Status
	st.ObservedGeneration = g.Generation
	st.AccessTokenSecretName = g.TargetSecretName()
	r.setScopesCondition(g)
	if readyCondition(g) == nil {
		r.setCondition(g, oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonPending, "No access token has been obtained yet.")
	}
	if !equality.Semantic.DeepEqual(before, st) {
		if err := r.Status().Update(ctx, g); err != nil {
			if apierrors.IsConflict(err) {
				// Someone (or our own previous write, not yet in the cache) got there first:
				// look again shortly with fresh data rather than logging an error.
				return ctrl.Result{RequeueAfter: time.Second}, nil
			}
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// setScopesCondition reports spec.scopes missing from the granted scopes; it is absent
// when spec.scopes is empty, and waits for the first token to know the granted scopes.
func (r *GoogleOAuthGrantReconciler) setScopesCondition(g *oauthv1alpha1.GoogleOAuthGrant) {
	if len(g.Spec.Scopes) == 0 {
		meta.RemoveStatusCondition(&g.Status.Conditions, oauthv1alpha1.ConditionScopesGranted)
		return
	}
	if g.Status.ExpiresAt == nil {
		return
	}
	var missing []string
	for _, s := range g.Spec.Scopes {
		if !slices.Contains(g.Status.GrantedScopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		r.setCondition(g, oauthv1alpha1.ConditionScopesGranted, metav1.ConditionTrue, oauthv1alpha1.ReasonAllScopesGranted, "Every scope in spec.scopes is granted.")
		return
	}
	r.setCondition(g, oauthv1alpha1.ConditionScopesGranted, metav1.ConditionFalse, oauthv1alpha1.ReasonMissingScopes,
		fmt.Sprintf("Not granted: %s. The user did not consent to them (users can grant scopes one by one); obtain a new refresh token with a consent that includes them.", strings.Join(missing, " ")))
}

// setReady sets the Ready condition and reports whether its status or reason changed, which
// is when events are worth sending (10,000 grants must not flood the event store).
func (r *GoogleOAuthGrantReconciler) setReady(g *oauthv1alpha1.GoogleOAuthGrant, before *oauthv1alpha1.GoogleOAuthGrantStatus, status metav1.ConditionStatus, reason, msg string) bool {
	r.setCondition(g, oauthv1alpha1.ConditionReady, status, reason, msg)
	old := meta.FindStatusCondition(before.Conditions, oauthv1alpha1.ConditionReady)
	return old == nil || old.Status != status || old.Reason != reason
}

func (r *GoogleOAuthGrantReconciler) setCondition(g *oauthv1alpha1.GoogleOAuthGrant, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&g.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: g.Generation,
		LastTransitionTime: metav1.NewTime(r.Clock.Now().UTC().Truncate(time.Second)),
	})
}

func (r *GoogleOAuthGrantReconciler) event(g *oauthv1alpha1.GoogleOAuthGrant, typ, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(g, nil, typ, reason, action, note, args...)
	}
}

func conditionTrue(conds []metav1.Condition, typ string) bool {
	return meta.IsStatusConditionTrue(conds, typ)
}

func timeOrZero(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// fingerprint is a short, non-reversible identifier of a secret value, for logs.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}
