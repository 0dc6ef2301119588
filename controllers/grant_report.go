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
func (r *GrantReconciler) report(ctx context.Context, g oauthv1alpha1.Grant, rep plan.Report) (ctrl.Result, error) {
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

// writeStatus is the one status write: st replaces g's status when it differs. First an
// update of the status subresource at the cached resourceVersion: the API server decodes it
// and keeps everything but the status from the stored grant, where a merge patch makes it
// re-encode the stored grant, apply the patch and decode the result again (the largest share
// of its CPU per refresh, docs/benchmarks.md). When the grant changed since the cache was
// filled (a user's annotation or spec edit) the update conflicts, and the status goes as a
// merge patch, which does not: a finished refresh's record never fails for such an edit
// (that change is reconciled next anyway).
func (r *GrantReconciler) writeStatus(ctx context.Context, g oauthv1alpha1.Grant, st oauthv1alpha1.GrantStatus) error {
	if equality.Semantic.DeepEqual(*g.GrantStatus(), st) {
		return nil
	}
	before := copyGrant(g)
	*g.GrantStatus() = st
	err := r.Status().Update(ctx, g)
	if apierrors.IsConflict(err) {
		err = r.Status().Patch(ctx, g, client.MergeFrom(before))
	}
	if err != nil {
		return err
	}
	r.writes.record(types.NamespacedName{Namespace: g.GetNamespace(), Name: g.GetName()}, r.Clock.Now(), func(e *replaced) { e.grant = before.GetResourceVersion() })
	return nil
}

func (r *GrantReconciler) event(g oauthv1alpha1.Grant, e plan.Event) {
	if r.Recorder != nil {
		r.Recorder.Eventf(g, nil, e.Type, e.Reason, e.Action, "%s", e.Note)
	}
}
