package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/metrics"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// DefaultMaxRevokeAttempts bounds how long a failing revocation holds up a deletion.
const DefaultMaxRevokeAttempts = 6

// finalize revokes the refresh token of a grant with deletionPolicy Revoke, then lets the
// deletion proceed. Deletion is never blocked forever: after a bounded number of failed
// attempts the finalizer goes and a Warning event says what to do by hand.
func (r *GoogleOAuthGrantReconciler) finalize(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(g, oauthv1alpha1.RevokeFinalizer) {
		return ctrl.Result{}, nil
	}
	live, err := grantinputs.ReadLive(ctx, r.APIReader, g)
	if err != nil {
		return ctrl.Result{}, err
	}
	name, rt := live.Secret, live.RefreshToken
	if !live.Found {
		r.eventf(g, corev1.EventTypeWarning, "RevokeSkipped", "Revoke", "Secret %q is gone, so there is no refresh token to revoke; if it was still valid, revoke it at https://myaccount.google.com/permissions", name)
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	}
	if rt == "" {
		r.eventf(g, corev1.EventTypeWarning, "RevokeSkipped", "Revoke", "Secret %q holds no usable refresh token under key %q; nothing to revoke", name, g.RefreshTokenKey())
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	}

	err = r.Tokens.Revoke(ctx, rt)
	var re *tokenclient.RevokeError
	metrics.RevokeRequests.WithLabelValues(revokeResult(err)).Inc()
	switch {
	case err == nil:
		r.eventf(g, corev1.EventTypeNormal, "RefreshTokenRevoked", "Revoke", "Revoked the refresh token in Secret %q at Google", name)
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	case errors.As(err, &re) && re.AlreadyInvalid():
		r.eventf(g, corev1.EventTypeNormal, "RefreshTokenRevoked", "Revoke", "The refresh token in Secret %q was already invalid at Google", name)
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	}

	attempts := g.Status.RevokeAttempts + 1
	if !(errors.As(err, &re) && re.Temporary()) || attempts >= r.maxRevokeAttempts() {
		r.eventf(g, corev1.EventTypeWarning, "RevokeFailed", "Revoke", "Gave up revoking the refresh token in Secret %q after %d attempt(s): %v. Revoke it by hand at https://myaccount.google.com/permissions", name, attempts, err)
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	}
	delay := r.Backoff.Delay(attempts, 0, string(g.UID))
	logf.FromContext(ctx).Info("revoking refresh token failed; retrying", "attempt", attempts, "error", err.Error(), "retryIn", delay)
	r.eventf(g, corev1.EventTypeWarning, "RevokeFailed", "Revoke", "Revoking the refresh token failed (attempt %d of %d): %v; retrying in %s", attempts, r.maxRevokeAttempts(), err, delay.Round(time.Second))
	st := *g.Status.DeepCopy()
	st.RevokeAttempts = attempts
	if err := r.writeStatus(ctx, g, st); err != nil {
		return ctrl.Result{}, fmt.Errorf("recording revoke attempt: %w", err)
	}
	return ctrl.Result{RequeueAfter: delay}, nil
}

func revokeResult(err error) string {
	var re *tokenclient.RevokeError
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &re) && re.AlreadyInvalid():
		return "already_invalid"
	case errors.As(err, &re) && re.Temporary():
		return "transient"
	default:
		return "failed"
	}
}

func (r *GoogleOAuthGrantReconciler) maxRevokeAttempts() int32 {
	if r.MaxRevokeAttempts > 0 {
		return r.MaxRevokeAttempts
	}
	return DefaultMaxRevokeAttempts
}

func (r *GoogleOAuthGrantReconciler) removeFinalizer(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant) error {
	before := g.DeepCopy()
	controllerutil.RemoveFinalizer(g, oauthv1alpha1.RevokeFinalizer)
	return client.IgnoreNotFound(patchFinalizers(ctx, r.Client, before, g))
}

func (r *GoogleOAuthGrantReconciler) eventf(g *oauthv1alpha1.GoogleOAuthGrant, typ, reason, action, note string, args ...any) {
	r.event(g, plan.Event{Type: typ, Reason: reason, Action: action, Note: fmt.Sprintf(note, args...)})
}
