package controllers

import (
	"context"
	"time"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// ensureConsent keeps a live consent link in the report's status while the grant needs a
// person (plan.NeedsConsent; plan clears status.consentURL otherwise), and looks again at
// the link's expiry so that an expired link is replaced.
func (r *GoogleOAuthGrantReconciler) ensureConsent(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, rep plan.Report, now time.Time) (plan.Report, error) {
	need := plan.NeedsConsent(g, &rep.Status)
	if r.Consent == nil || need == nil {
		return rep, nil
	}
	again, events, err := r.Consent.Ensure(ctx, g, need, &rep.Status, now)
	if err != nil {
		return rep, err
	}
	rep.Events = append(rep.Events, events...)
	if rep.RequeueAfter == 0 || again < rep.RequeueAfter {
		rep.RequeueAfter = again
	}
	return rep, nil
}
