// Package controllers holds the GoogleOAuthGrant controller: it keeps a derived Secret with a
// fresh access token for each grant and reports the grant's health in its status.
package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/decision"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/secretwatch"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// TokenEndpoint is Google's token and revocation endpoints (tokenclient.Endpoint).
type TokenEndpoint interface {
	Refresh(ctx context.Context, client credentials.Client, refreshToken string, now time.Time) (*tokenclient.Token, error)
	Revoke(ctx context.Context, token string) error
}

// GoogleOAuthGrantReconciler reconciles GoogleOAuthGrant objects.
type GoogleOAuthGrantReconciler struct {
	// Client is the manager's client: its cache holds grants and the Secrets we label.
	client.Client
	// APIReader reads live from the API server: user Secrets' data, and a fresh look at a
	// grant before any token request.
	APIReader client.Reader
	// secretWatch watches the metadata of the Secrets we do not manage, in namespaces with
	// grants; secretMeta reads from it (both set up by SetupWithManager).
	secretWatch *secretwatch.Watcher
	secretMeta  client.Reader

	Recorder events.EventRecorder
	Tokens   TokenEndpoint
	Clock    clock.PassiveClock
	Backoff  schedule.Backoff
	// MaxRevokeAttempts bounds how long deletion waits on a failing revocation.
	MaxRevokeAttempts int32
	// Decided, when set, is called after every reconcile that decided a grant's fate (not
	// after a requeue that only waited for a cache), with the clock's time when the decision
	// began. Tests use it as a barrier: "this grant was decided after time T".
	Decided func(grant types.NamespacedName, began time.Time)
}

// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthgrants,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthgrants/status,verbs=get;update
// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthgrants/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one grant's derived Secret and status up to date.
func (r *GoogleOAuthGrantReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	grant := &oauthv1alpha1.GoogleOAuthGrant{}
	if err := r.Get(ctx, req.NamespacedName, grant); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.releaseSecretWatch(ctx, req.Namespace)
		}
		return ctrl.Result{}, err
	}
	if !grant.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, grant)
	}
	if err := r.syncFinalizer(ctx, grant); err != nil {
		return ctrl.Result{}, err
	}
	if !r.secretWatch.Synced(grant.Namespace) {
		// The namespace's Secret watch has just started; decide once it has listed them.
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	if r.Decided != nil {
		began := r.Clock.Now()
		defer r.Decided(req.NamespacedName, began)
	}

	obs, err := r.observe(ctx, grant, false)
	if err != nil {
		return ctrl.Result{}, err
	}
	d := decision.Decide(obs.facts)
	if d.Refresh {
		// The cache may lag our own last write by a moment; a token request is an external
		// side effect, so confirm the decision against the API server first.
		fresh := &oauthv1alpha1.GoogleOAuthGrant{}
		if err := r.APIReader.Get(ctx, req.NamespacedName, fresh); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if !fresh.DeletionTimestamp.IsZero() {
			return ctrl.Result{}, nil
		}
		grant = fresh
		if obs, err = r.observe(ctx, grant, true); err != nil {
			return ctrl.Result{}, err
		}
		d = decision.Decide(obs.facts)
	}
	if d.Refresh {
		return r.refresh(ctx, grant, obs, d)
	}
	return r.settle(ctx, grant, obs, d)
}

// releaseSecretWatch stops watching a namespace's Secrets once it holds no grants.
func (r *GoogleOAuthGrantReconciler) releaseSecretWatch(ctx context.Context, ns string) error {
	var grants oauthv1alpha1.GoogleOAuthGrantList
	if err := r.List(ctx, &grants, client.InNamespace(ns), client.Limit(1)); err != nil {
		return err
	}
	if len(grants.Items) == 0 {
		r.secretWatch.Release(ns)
	}
	return nil
}

// observation is what observe found.
type observation struct {
	facts       decision.Facts
	target      *corev1.Secret // our derived Secret, nil when absent or not ours
	token       derivedsecret.Token
	conflict    string // why the target name is unusable, "" when fine
	fingerprint string
	manual      string // the pending manual refresh request, "" if none
	// userSecrets are the client and refresh-token Secrets by name (nil when absent), read
	// live; only a live observation has them.
	userSecrets map[string]*corev1.Secret
}

// observe gathers the facts for a decision, from the caches or, when live, from the API
// server. A live observation also reads the client and refresh-token Secrets in full, once,
// for both the inputs fingerprint and the token request.
func (r *GoogleOAuthGrantReconciler) observe(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, live bool) (*observation, error) {
	now := r.Clock.Now()
	o := &observation{}
	st := &g.Status
	secrets, meta := client.Reader(r.Client), r.secretMeta
	if live {
		secrets, meta = r.APIReader, r.APIReader
	}

	target, conflict, err := r.targetSecret(ctx, g, secrets, meta)
	if err != nil {
		return nil, err
	}
	o.target, o.conflict = target, conflict
	if target != nil {
		o.token, o.facts.HaveToken = derivedsecret.Read(target, g.Name)
		// An orphaned Secret (owner reference removed by hand) is rewritten, which restores it.
		o.facts.HaveToken = o.facts.HaveToken && derivedsecret.OwnedBy(target, string(g.UID))
	}

	metas := map[string]*metav1.ObjectMeta{}
	for _, name := range userSecretNames(g) {
		if live {
			if o.userSecrets == nil {
				o.userSecrets = map[string]*corev1.Secret{}
			}
			s := &corev1.Secret{}
			switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: g.Namespace, Name: name}, s); {
			case err == nil:
				o.userSecrets[name], metas[name] = s, &s.ObjectMeta
			case !apierrors.IsNotFound(err):
				return nil, err
			}
			continue
		}
		m, err := r.cachedSecretMeta(ctx, g.Namespace, name)
		if err != nil {
			return nil, err
		}
		metas[name] = m
	}
	o.fingerprint = fingerprintInputs(g, metas)
	o.manual = pendingManualRequest(g)

	ready := readyCondition(g)
	o.facts = decision.Facts{
		Now:              now,
		TargetConflict:   conflict != "",
		HaveToken:        o.facts.HaveToken,
		Issued:           o.token.RefreshedAt,
		Expiry:           o.token.Expiry,
		Seed:             string(g.UID),
		InputsChanged:    o.fingerprint != st.InputsFingerprint,
		ManualRequest:    o.manual != "",
		PermanentFailure: ready != nil && ready.Status != metav1.ConditionTrue && permanentReasons[ready.Reason],
		FailedAttempts:   st.FailedRefreshAttempts,
	}
	if g.Spec.RefreshBefore != nil {
		o.facts.RefreshWant = g.Spec.RefreshBefore.Duration
	}
	if st.RefreshTime != nil {
		o.facts.RetryAt = st.RefreshTime.Time
	}
	return o, nil
}

// permanentReasons are Ready reasons that retrying without a change cannot fix.
var permanentReasons = map[string]bool{
	oauthv1alpha1.ReasonInvalidGrant:         true,
	oauthv1alpha1.ReasonInvalidClient:        true,
	oauthv1alpha1.ReasonTokenRequestRejected: true,
	oauthv1alpha1.ReasonSecretNotFound:       true,
	oauthv1alpha1.ReasonSecretKeyMissing:     true,
	oauthv1alpha1.ReasonInvalidClientSecret:  true,
}

// targetSecret finds the derived Secret. It returns our Secret (nil if absent), or a
// non-empty conflict message when the name belongs to a Secret this grant does not own.
func (r *GoogleOAuthGrantReconciler) targetSecret(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, secrets, meta client.Reader) (*corev1.Secret, string, error) {
	name := g.TargetSecretName()
	key := types.NamespacedName{Namespace: g.Namespace, Name: name}
	conflictMsg := func(s metav1.Object) string {
		owner := "no controller"
		if ref := metav1.GetControllerOfNoCopy(s); ref != nil {
			owner = fmt.Sprintf("controller %s %q", ref.Kind, ref.Name)
		}
		return fmt.Sprintf("Secret %q already exists and is not owned by this grant (it has %s); grantkeeper never overwrites it. Delete or rename it, or set spec.accessTokenSecretName to another name", name, owner)
	}
	for _, ref := range userSecretNames(g) {
		if ref == name {
			return nil, fmt.Sprintf("the access-token Secret name %q is also a referenced Secret; set spec.accessTokenSecretName to another name", name), nil
		}
	}
	s := &corev1.Secret{}
	err := secrets.Get(ctx, key, s)
	switch {
	case err == nil:
		if !derivedsecret.OwnedBy(s, string(g.UID)) && !derivedsecret.Orphaned(s, g.Name) {
			return nil, conflictMsg(s), nil
		}
		return s, "", nil
	case !apierrors.IsNotFound(err):
		return nil, "", err
	}
	// Not among the Secrets we label: is an unlabelled Secret of that name there?
	m := secretMetadata()
	if err := meta.Get(ctx, key, m); err != nil {
		return nil, "", client.IgnoreNotFound(err)
	}
	if !derivedsecret.OwnedBy(m, string(g.UID)) {
		return nil, conflictMsg(m), nil
	}
	// Ours, but someone removed our labels: read it live so it can be repaired.
	if err := r.APIReader.Get(ctx, key, s); err != nil {
		return nil, "", client.IgnoreNotFound(err)
	}
	return s, "", nil
}

func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// userSecretNames are the Secrets a grant reads: the client's and the refresh token's, or
// the one authorized-user Secret.
func userSecretNames(g *oauthv1alpha1.GoogleOAuthGrant) []string {
	if g.UsesAuthorizedUser() {
		return []string{g.Spec.AuthorizedUserSecretRef.Name}
	}
	return []string{g.ClientSecretName(), g.RefreshTokenSecretName()}
}

// cachedSecretMeta returns a user Secret's metadata from the caches, nil when absent.
func (r *GoogleOAuthGrantReconciler) cachedSecretMeta(ctx context.Context, ns, name string) (*metav1.ObjectMeta, error) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	m := secretMetadata()
	err := r.secretMeta.Get(ctx, key, m)
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

// pendingManualRequest returns the refresh-requested-at annotation when it asks for a
// refresh that has not been handled: a valid RFC 3339 time, not older than the last refresh
// (the same second counts: both are whole seconds), and not the request handled last (so a
// request whose refresh failed is not retried in a loop).
func pendingManualRequest(g *oauthv1alpha1.GoogleOAuthGrant) string {
	v := g.Annotations[oauthv1alpha1.RefreshRequestedAtAnnotation]
	if v == "" || v == g.Status.LastHandledRefreshRequest {
		return ""
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return ""
	}
	if last := g.Status.LastRefreshTime; last != nil && t.Before(last.Time) {
		return ""
	}
	return v
}

func readyCondition(g *oauthv1alpha1.GoogleOAuthGrant) *metav1.Condition {
	for i := range g.Status.Conditions {
		if g.Status.Conditions[i].Type == oauthv1alpha1.ConditionReady {
			return &g.Status.Conditions[i]
		}
	}
	return nil
}

// syncFinalizer adds the revoke finalizer for deletionPolicy Revoke and removes it otherwise.
func (r *GoogleOAuthGrantReconciler) syncFinalizer(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant) error {
	want := g.Spec.DeletionPolicy == oauthv1alpha1.DeletionPolicyRevoke
	if want == controllerutil.ContainsFinalizer(g, oauthv1alpha1.RevokeFinalizer) {
		return nil
	}
	if want {
		controllerutil.AddFinalizer(g, oauthv1alpha1.RevokeFinalizer)
	} else {
		controllerutil.RemoveFinalizer(g, oauthv1alpha1.RevokeFinalizer)
	}
	return r.Update(ctx, g)
}
