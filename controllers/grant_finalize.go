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
	"github.com/grantkeeper/grantkeeper/internal/oauthtoken"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// DefaultMaxRevokeAttempts bounds how long a failing revocation holds up a deletion.
const DefaultMaxRevokeAttempts = 6

// finalize revokes the refresh token of a grant with deletionPolicy Revoke, then lets the
// deletion proceed. Deletion is never blocked forever: after a bounded number of failed
// attempts the finalizer goes and a Warning event says what to do by hand.
func (r *GrantReconciler) finalize(ctx context.Context, g oauthv1alpha1.Grant) (ctrl.Result, error) {
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

	where := "Google"
	if googleGrant(g) == nil {
		where = "the provider"
	}
	err = r.revoke(ctx, g, rt)
	var re *tokenclient.RevokeError
	metrics.RevokeRequests.WithLabelValues(revokeResult(err)).Inc()
	switch {
	case err == nil:
		r.eventf(g, corev1.EventTypeNormal, "RefreshTokenRevoked", "Revoke", "Revoked the refresh token in Secret %q at %s", name, where)
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	case errors.As(err, &re) && re.AlreadyInvalid():
		r.eventf(g, corev1.EventTypeNormal, "RefreshTokenRevoked", "Revoke", "The refresh token in Secret %q was already invalid at %s", name, where)
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	case errors.Is(err, errNoRevocationEndpoint):
		r.eventf(g, corev1.EventTypeWarning, "RevokeFailed", "Revoke", "Cannot revoke the refresh token in Secret %q: %v. Revoke it by hand at the provider", name, err)
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	}
	attempts := g.GrantStatus().RevokeAttempts + 1
	var temp interface{ Temporary() bool }
	if !(errors.As(err, &temp) && temp.Temporary()) || attempts >= r.maxRevokeAttempts() {
		how := "at https://myaccount.google.com/permissions"
		if googleGrant(g) == nil {
			how = "at the provider"
		}
		r.eventf(g, corev1.EventTypeWarning, "RevokeFailed", "Revoke", "Gave up revoking the refresh token in Secret %q after %d attempt(s): %v. Revoke it by hand %s", name, attempts, err, how)
		return ctrl.Result{}, r.removeFinalizer(ctx, g)
	}
	delay := r.Backoff.Delay(attempts, 0, string(g.GetUID()))
	logf.FromContext(ctx).Info("revoking refresh token failed; retrying", "attempt", attempts, "error", err.Error(), "retryIn", delay)
	r.eventf(g, corev1.EventTypeWarning, "RevokeFailed", "Revoke", "Revoking the refresh token failed (attempt %d of %d): %v; retrying in %s", attempts, r.maxRevokeAttempts(), err, delay.Round(time.Second))
	st := *g.GrantStatus().DeepCopy()
	st.RevokeAttempts = attempts
	if err := r.writeStatus(ctx, g, st); err != nil {
		return ctrl.Result{}, fmt.Errorf("recording revoke attempt: %w", err)
	}
	return ctrl.Result{RequeueAfter: delay}, nil
}

// errNoRevocationEndpoint: the grant's provider has no revocation endpoint (RFC 7009).
var errNoRevocationEndpoint = errors.New("the provider has no revocation endpoint")

// revoke revokes a refresh token where the grant's kind says: Google's endpoint, or the
// revocation endpoint of an OAuthGrant's client object (RFC 7009, authenticated as the client).
func (r *GrantReconciler) revoke(ctx context.Context, g oauthv1alpha1.Grant, rt string) error {
	if googleGrant(g) != nil {
		return r.Tokens.Revoke(ctx, rt)
	}
	res, err := grantinputs.Resolve(ctx, g, caches{r}, grantinputs.Options{NamespacesOnly: r.namespacesOnly})
	if err != nil {
		return err
	}
	if res.Client == nil || res.Client.Provider == nil {
		return fmt.Errorf("the client object spec.clientRef names is gone or not usable: %w", errNoRevocationEndpoint)
	}
	in, problem, err := r.credentials().Read(ctx, g, &res)
	switch {
	case err != nil:
		return err
	case problem != nil && in.Provider == nil:
		return fmt.Errorf("%s: %w", problem.Message, errNoRevocationEndpoint)
	case in.Provider.Endpoints.RevocationURL == "":
		return errNoRevocationEndpoint
	}
	e := &oauthtoken.Endpoint{TokenURL: in.Provider.Endpoints.TokenURL, RevocationURL: in.Provider.Endpoints.RevocationURL, HTTP: r.ProviderHTTP}
	return e.Revoke(ctx, in.Provider.Client, rt, "refresh_token", r.Clock.Now())
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

func (r *GrantReconciler) maxRevokeAttempts() int32 {
	if r.MaxRevokeAttempts > 0 {
		return r.MaxRevokeAttempts
	}
	return DefaultMaxRevokeAttempts
}

func (r *GrantReconciler) removeFinalizer(ctx context.Context, g oauthv1alpha1.Grant) error {
	before := copyGrant(g)
	controllerutil.RemoveFinalizer(g, oauthv1alpha1.RevokeFinalizer)
	return client.IgnoreNotFound(patchFinalizers(ctx, r.Client, before, g))
}

func (r *GrantReconciler) eventf(g oauthv1alpha1.Grant, typ, reason, action, note string, args ...any) {
	r.event(g, plan.Event{Type: typ, Reason: reason, Action: action, Note: fmt.Sprintf(note, args...)})
}
