package controllers

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/writable"
)

// ensureConsent keeps a live consent link offered (status.consent Required, the link in the
// grant's link Secret) while the grant needs a person (plan.NeedsConsent; plan clears
// status.consent otherwise), and looks again at the link's expiry so that an expired link
// is replaced. A failure to mint does not hold back the rest of the report (a token request
// may just have been recorded): it is retried a second later. A Secret the consent would
// write that is not the grant's makes SecretsWritable False, naming it; nothing is written.
func (r *GrantReconciler) ensureConsent(ctx context.Context, g oauthv1alpha1.Grant, rep plan.Report, now time.Time) plan.Report {
	need := plan.NeedsConsent(g, &rep.Status)
	gg := googleGrant(g)
	if r.Consent == nil || need == nil || gg == nil {
		return rep
	}
	again, events, err := r.Consent.Ensure(ctx, gg, need, &rep.Status, now)
	var werr *writable.Error
	switch {
	case errors.As(err, &werr):
		rep = notWritable(rep, werr, "Consent", now)
		// The foreign Secret is not watched: look again in a while.
		again = time.Minute
	case err != nil:
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			logf.FromContext(ctx).Error(err, "keeping the consent link")
		}
		again = time.Second
	default:
		meta.RemoveStatusCondition(&rep.Status.Conditions, oauthv1alpha1.ConditionSecretsWritable)
	}
	rep.Events = append(rep.Events, events...)
	if rep.RequeueAfter == 0 || again < rep.RequeueAfter {
		rep.RequeueAfter = again
	}
	return rep
}

// notWritable reports that grantkeeper wrote nothing to a Secret that is not the grant's:
// SecretsWritable False naming it, and a Warning event when that is news.
func notWritable(rep plan.Report, werr *writable.Error, action string, now time.Time) plan.Report {
	c := meta.FindStatusCondition(rep.Status.Conditions, oauthv1alpha1.ConditionSecretsWritable)
	if c == nil || c.Status != metav1.ConditionFalse || c.Message != werr.Error() {
		rep.Events = append(rep.Events, plan.Event{Type: corev1.EventTypeWarning, Reason: oauthv1alpha1.ReasonSecretNotOwned, Action: action, Note: werr.Error()})
	}
	meta.SetStatusCondition(&rep.Status.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionSecretsWritable, Status: metav1.ConditionFalse,
		Reason: oauthv1alpha1.ReasonSecretNotOwned, Message: werr.Error(), ObservedGeneration: rep.Status.ObservedGeneration,
		LastTransitionTime: metav1.NewTime(now.UTC().Truncate(time.Second))})
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
