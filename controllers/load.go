package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// observation is plan.Observation plus what act needs to write: the derived Secret as found.
type observation struct {
	plan.Observation
	target *corev1.Secret // our derived Secret; nil when absent or unusable
	// client is the object spec.clientRef names, when it exists.
	client *clientObject
}

// load gathers one grant's observation from the caches, without API requests. stale
// reports that a cache does not yet show our own last write to the grant or its Secret.
func (r *GoogleOAuthGrantReconciler) load(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant) (obs observation, stale bool, err error) {
	obs.Now = r.Clock.Now()
	obs.Grant = g
	obs.Backoff = r.Backoff
	obs.ConsentEnabled = r.Consent != nil
	key := types.NamespacedName{Namespace: g.Namespace, Name: g.Name}

	target, err := derivedsecret.Lookup(ctx, r.secretReaders(), g, userSecretNames(g))
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
		tok, ok := derivedsecret.Read(target, g.Name)
		// An orphaned Secret (owner reference removed by hand) is rewritten, which restores it.
		obs.Token, obs.HaveToken = tok, ok && derivedsecret.OwnedBy(target, string(g.UID))
		if derivedsecret.OwnedBy(target, string(g.UID)) {
			obs.Withdrawal = derivedsecret.Withdrawn(target)
		}
	}

	metas := map[string]*metav1.ObjectMeta{}
	for _, name := range userSecretNames(g) {
		m, err := r.cachedSecretMeta(ctx, g.Namespace, name)
		if err != nil {
			return obs, false, err
		}
		metas[name] = m
	}
	obs.Fingerprint = fingerprintInputs(g, metas)
	obs.RefreshTokenAbsent = g.Spec.RefreshTokenSecretRef != nil && metas[g.RefreshTokenSecretName()] == nil
	if g.Spec.ClientRef != nil {
		state, co, secretMeta, wait, err := r.loadClient(ctx, g)
		if err != nil || wait {
			return obs, wait, err
		}
		obs.Client, obs.client = state, co
		obs.Fingerprint = plan.JoinFingerprint(obs.Fingerprint, clientFingerprint(co, secretMeta))
	}
	return obs, false, nil
}

// loadClient reads, from the caches, the client object spec.clientRef names, whether it
// admits the grant's namespace, and its Secret's metadata (nil when absent or not needed).
// wait reports that the Secret's namespace is not watched yet.
func (r *GoogleOAuthGrantReconciler) loadClient(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant) (st *plan.ClientState, co *clientObject, secret *metav1.ObjectMeta, wait bool, err error) {
	kind := g.ClientRefKind()
	st = &plan.ClientState{Kind: kind, Name: g.Spec.ClientRef.Name}
	if kind == oauthv1alpha1.KindClusterGoogleOAuthClient && r.namespacesOnly {
		st.Found, st.NotAllowedWhy = true, "this grantkeeper manages only some namespaces (--namespaces) and does not read cluster-scoped clients; use a GoogleOAuthClient in this namespace"
		return st, nil, nil, false, nil
	}
	co, err = getClientObject(ctx, r.Client, kind, types.NamespacedName{Namespace: g.Namespace, Name: g.Spec.ClientRef.Name}, r.ManagerNamespace)
	if err != nil || co == nil {
		return st, nil, nil, false, err
	}
	st.Found, st.Allowed = true, true
	if co.cluster != nil {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := r.Get(ctx, types.NamespacedName{Name: g.Namespace}, ns); client.IgnoreNotFound(err) != nil {
			return st, nil, nil, false, err
		}
		st.Allowed = plan.NamespaceAllowed(*co.cluster, g.Namespace, ns.Labels)
	}
	st.Ready = plan.ClientReady(co.obj.GetGeneration(), *co.status)
	if !st.Allowed || co.secret.Namespace == "" {
		return st, co, nil, false, nil
	}
	if !r.SecretMeta.Synced(co.secret.Namespace) {
		return st, co, nil, true, nil
	}
	secret, err = r.cachedSecretMeta(ctx, co.secret.Namespace, co.secret.Name)
	return st, co, secret, false, err
}

// clientFingerprint identifies a client object's spec and its Secret's version (UIDs,
// generations and resourceVersions only).
func clientFingerprint(co *clientObject, secret *metav1.ObjectMeta) string {
	h := sha256.New()
	if co == nil {
		fmt.Fprint(h, "absent;")
	} else {
		fmt.Fprintf(h, "%s/%s=%s/%d;", co.kind, co.obj.GetName(), co.obj.GetUID(), co.obj.GetGeneration())
		if secret != nil {
			fmt.Fprintf(h, "%s/%s=%s/%s;", co.secret.Namespace, co.secret.Name, secret.UID, secret.ResourceVersion)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (r *GoogleOAuthGrantReconciler) secretReaders() derivedsecret.Readers {
	return derivedsecret.Readers{Managed: r.Client, Meta: r.SecretMeta.Reader(), Live: r.APIReader}
}

// userSecretNames are the Secrets a grant reads: the client's and the refresh token's, or
// the one authorized-user or service-account key Secret (with a clientRef, only the refresh
// token's).
func userSecretNames(g *oauthv1alpha1.GoogleOAuthGrant) []string {
	switch {
	case g.UsesAuthorizedUser():
		return []string{g.Spec.AuthorizedUserSecretRef.Name}
	case g.UsesServiceAccount():
		return []string{g.Spec.ServiceAccountKeySecretRef.Name}
	case g.Spec.ClientRef != nil:
		// The client object's Secret is the client's, watched through it.
		return []string{g.RefreshTokenSecretName()}
	}
	return []string{g.ClientSecretName(), g.RefreshTokenSecretName()}
}

// cachedSecretMeta returns a user Secret's metadata from the caches, nil when absent.
func (r *GoogleOAuthGrantReconciler) cachedSecretMeta(ctx context.Context, ns, name string) (*metav1.ObjectMeta, error) {
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

// fingerprintInputs identifies the spec generation and the versions of the referenced
// Secrets (metas, nil for absent ones). It holds no secret material: only UIDs and
// resourceVersions are hashed.
func fingerprintInputs(g *oauthv1alpha1.GoogleOAuthGrant, metas map[string]*metav1.ObjectMeta) string {
	h := sha256.New()
	fmt.Fprintf(h, "gen=%d;", g.Generation)
	for _, name := range userSecretNames(g) {
		if m := metas[name]; m != nil {
			fmt.Fprintf(h, "%s=%s/%s;", name, m.UID, m.ResourceVersion)
		} else {
			fmt.Fprintf(h, "%s=absent;", name)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
