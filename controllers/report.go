package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// report records the plan's events, writes the status if it changed, and schedules the next look.
func (r *GoogleOAuthGrantReconciler) report(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, rep plan.Report) (ctrl.Result, error) {
	for _, e := range rep.Events {
		r.event(g, e)
	}
	if err := r.writeStatus(ctx, g, rep.Status); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: rep.RequeueAfter}, nil
}

// writeStatus is the one status write: st replaces g's status when it differs. A merge
// patch rather than an update: the status is written by grantkeeper alone, and a user's
// annotation or spec edit since the cache was filled must not make a finished refresh's
// record fail (that change is reconciled next anyway).
func (r *GoogleOAuthGrantReconciler) writeStatus(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, st oauthv1alpha1.GoogleOAuthGrantStatus) error {
	if equality.Semantic.DeepEqual(g.Status, st) {
		return nil
	}
	before := g.DeepCopy()
	g.Status = st
	if err := r.Status().Patch(ctx, g, client.MergeFrom(before)); err != nil {
		return err
	}
	r.writes.record(types.NamespacedName{Namespace: g.Namespace, Name: g.Name}, r.Clock.Now(), func(e *replaced) { e.grant = before.ResourceVersion })
	return nil
}

func (r *GoogleOAuthGrantReconciler) event(g *oauthv1alpha1.GoogleOAuthGrant, e plan.Event) {
	if r.Recorder != nil {
		r.Recorder.Eventf(g, nil, e.Type, e.Reason, e.Action, "%s", e.Note)
	}
}
