package controllers

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// observation is plan.Observation plus what act needs: the derived Secret as found and the
// grant's inputs as resolved (grantinputs: its credential form, client object, Secrets).
type observation struct {
	plan.Observation
	target *corev1.Secret // our derived Secret; nil when absent or unusable
	inputs grantinputs.Resolved
}

// load gathers one grant's observation from the caches, without API requests. stale
// reports that a cache does not yet show our own last write to the grant or its Secret.
func (r *GrantReconciler) load(ctx context.Context, g oauthv1alpha1.Grant) (obs observation, stale bool, err error) {
	obs.Now = r.Clock.Now()
	obs.Grant = g
	obs.Backoff = r.Backoff
	obs.ConsentEnabled = r.Consent != nil
	key := types.NamespacedName{Namespace: g.GetNamespace(), Name: g.GetName()}

	target, err := derivedsecret.Lookup(ctx, r.secretReaders(), g, grantinputs.Of(g).Secrets())
	var conflict *derivedsecret.ConflictError
	switch {
	case err == nil:
	case errors.As(err, &conflict):
		obs.Conflict = conflict
	default:
		return obs, false, err
	}
	if r.writes.stale(key, obs.Now, g, target) {
		return obs, true, nil
	}
	if target != nil {
		obs.target = target
		tok, ok := derivedsecret.Read(target, g.GetName())
		// An orphaned Secret (owner reference removed by hand) is rewritten, which restores it.
		obs.Token, obs.HaveToken = tok, ok && derivedsecret.OwnedBy(target, string(g.GetUID()))
		if derivedsecret.OwnedBy(target, string(g.GetUID())) {
			obs.Withdrawal = derivedsecret.Withdrawn(target)
		}
	}

	obs.inputs, err = grantinputs.Resolve(ctx, g, caches{r}, grantinputs.Options{NamespacesOnly: r.namespacesOnly})
	if err != nil || obs.inputs.Wait {
		return obs, obs.inputs.Wait, err
	}
	obs.Fingerprint = obs.inputs.Fingerprint
	obs.RefreshTokenAbsent = obs.inputs.RefreshTokenAbsent
	obs.Client = obs.inputs.ClientState
	return obs, false, nil
}

// caches is grantinputs.Caches over the reconciler's caches.
type caches struct{ r *GrantReconciler }

func (c caches) SecretMeta(ctx context.Context, ns, name string) (*metav1.ObjectMeta, error) {
	return c.r.cachedSecretMeta(ctx, ns, name)
}

func (c caches) SecretsSynced(ns string) bool { return c.r.SecretMeta.Synced(ns) }

func (c caches) Client(ctx context.Context, kind string, key types.NamespacedName) (*grantinputs.ClientObject, error) {
	return grantinputs.GetClient(ctx, c.r.Client, kind, key, c.r.ManagerNamespace)
}

func (c caches) NamespaceLabels(ctx context.Context, ns string) (map[string]string, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.r.Get(ctx, types.NamespacedName{Name: ns}, m); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return m.Labels, nil
}

func (r *GrantReconciler) secretReaders() derivedsecret.Readers {
	return derivedsecret.Readers{Managed: r.Client, Meta: r.SecretMeta.Reader(), Live: r.APIReader}
}

// cachedSecretMeta returns a user Secret's metadata from the caches, nil when absent.
func (r *GrantReconciler) cachedSecretMeta(ctx context.Context, ns, name string) (*metav1.ObjectMeta, error) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := r.SecretMeta.Reader().Get(ctx, key, m)
	if err == nil {
		return &m.ObjectMeta, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	// Perhaps it carries our label, so it lives in the other cache.
	s := &corev1.Secret{}
	if err := r.Get(ctx, key, s); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return &s.ObjectMeta, nil
}
