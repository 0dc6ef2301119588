package controllers

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// ensureConsent keeps a live consent link in the report's status while the grant needs a
// person (plan.NeedsConsent; plan clears status.consentURL otherwise), and looks again at
// the link's expiry so that an expired link is replaced. A failure to mint does not hold
// back the rest of the report (a token request may just have been recorded): it is retried
// a second later.
func (r *GoogleOAuthGrantReconciler) ensureConsent(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, rep plan.Report, now time.Time) plan.Report {
	need := plan.NeedsConsent(g, &rep.Status)
	if r.Consent == nil || need == nil {
		return rep
	}
	again, events, err := r.Consent.Ensure(ctx, g, need, &rep.Status, now)
	if err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			logf.FromContext(ctx).Error(err, "keeping the consent link")
		}
		again = time.Second
	}
	rep.Events = append(rep.Events, events...)
	if rep.RequeueAfter == 0 || again < rep.RequeueAfter {
		rep.RequeueAfter = again
	}
	return rep
}

// mapLabelledInput maps a Secret in the managed cache without an owner reference (a
// refresh-token Secret a consent link created) to the grants that read it.
func mapLabelledInput(mapSecret func(context.Context, *metav1.PartialObjectMetadata) []reconcile.Request) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		if len(o.GetOwnerReferences()) > 0 {
			return nil
		}
		m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: o.GetName()}}
		return mapSecret(ctx, m)
	}
}
