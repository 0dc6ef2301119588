package controllers

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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
