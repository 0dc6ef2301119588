// Package controllers holds the manager's controllers, one room (file prefix) each:
// grant_* the grant controller (run once for GoogleOAuthGrants, once for OAuthGrants:
// grant_kind.go), which keeps a derived Secret with a fresh access token for each grant and
// reports the grant's health in its status; client_* the Google
// OAuth client kinds'; securityevents_* the security-event receiver's side; cache_* what the
// caches keep; manager.go wires them all (Setup). The provider client kinds are in
// controllers/provider.
//
// A grant's reconcile reads top-down: load (grant_load.go: one Observation from the caches),
// decide (internal/plan: pure), act (grant_act.go: the token request and the Secret writes,
// only when the plan says so), report (grant_report.go: events and one status write).
package controllers

import (
	"context"
	"net/http"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/idtoken"
	"github.com/grantkeeper/grantkeeper/internal/plan"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// TokenEndpoint is Google's token and revocation endpoints (tokenclient.Endpoint).
type TokenEndpoint interface {
	// Refresh sends scopes as the request's scope when set (the token carries only those).
	Refresh(ctx context.Context, client credentials.Client, refreshToken string, scopes []string, now time.Time) (*tokenclient.Token, error)
	Revoke(ctx context.Context, token string) error
	// ServiceAccountToken exchanges a service account's signed assertion (for subject
	// through domain-wide delegation when set).
	ServiceAccountToken(ctx context.Context, key credentials.ServiceAccountKey, scopes []string, subject string, now time.Time) (*tokenclient.Token, error)
	// Tokeninfo names the account an access token acts for (account.go uses it when a
	// grant has the email scope but not openid).
	Tokeninfo(ctx context.Context, accessToken string) (idtoken.Account, error)
}

// SecretMetadata reads the metadata of the Secrets grantkeeper does not label, in the
// namespaces that hold grants (secretwatch.Watcher in the manager).
type SecretMetadata interface {
	// Synced starts watching the namespace if needed and reports whether its cache is filled.
	Synced(namespace string) bool
	// Release stops watching a namespace that no longer holds grants.
	Release(namespace string)
	// Reader answers Gets of *metav1.PartialObjectMetadata Secrets.
	Reader() client.Reader
}

// GrantReconciler reconciles the grants of one kind (GoogleOAuthGrant, or OAuthGrant when set
// up by setupProviderGrants): the same steps for both, through oauthv1alpha1.Grant.
type GrantReconciler struct {
	// Client is the manager's client: its cache holds grants and the Secrets we label.
	client.Client
	// APIReader reads live from the API server: the Secret holding the refresh token, read
	// once per token request so that a request never uses a stale refresh token.
	APIReader client.Reader
	// SecretMeta watches the other Secrets' metadata; SetupWithManager sets it when nil.
	SecretMeta SecretMetadata

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

	// writes remembers our last writes until the cache shows them (grant_lastwrite.go).
	writes lastWrites
	// ManagerNamespace is where a ClusterGoogleOAuthClient's Secret is when its
	// spec.secretRef names no namespace (the manager's own).
	ManagerNamespace string

	// inputs reads credentials at act time, with its records of refresh tokens and clients
	// by Secret version (grantinputs.Reader); set up on first use (credentials).
	inputs     grantinputs.Reader
	inputsOnce sync.Once
	// namespacesOnly: the manager reads only some namespaces, so no cluster-scoped clients.
	namespacesOnly bool

	// Consent keeps consent links for grants that need a person; nil when consent links
	// are off (--consent-bind-address 0).
	Consent *consent.Links
	// TokenIndex, when set, learns the refresh tokens token requests use, for security
	// events (securityevents.go); nil when the receiver is off.
	TokenIndex *TokenIndex
	// ProviderHTTP makes an OAuthGrant's token and revocation requests: it dials only where
	// Config.Egress allows (a tenant chooses the provider's URLs).
	ProviderHTTP *http.Client

	// kind is the grant kind reconciled (GoogleOAuthGrant unless set up for OAuthGrant).
	kind grantKind
	// fanout passes the Secret metadata watch's events to every controller that needs them.
	fanout *secretFanout
}

// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthgrants;oauthgrants,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthgrants/status;oauthgrants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthgrants/finalizers;oauthgrants/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// cacheLagRetry is how soon to look again when the cache does not yet show our own last write.
const cacheLagRetry = 100 * time.Millisecond

// Reconcile runs one reconcile so that a manager shutdown is quiet: work in flight finishes
// (within ShutdownGrace), no new work starts once the manager is stopping, and what the
// shutdown still interrupts is logged at info level, not as a "Reconciler error": nothing is
// wrong, and the next leader picks the grant up again from its status and Secrets.
func (r *GrantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if ctx.Err() != nil {
		return ctrl.Result{}, nil
	}
	dctx, cancel := drain(ctx, ShutdownGrace)
	defer cancel()
	res, err := r.reconcile(dctx, req)
	if err != nil && ctx.Err() != nil {
		logf.FromContext(ctx).Info("reconcile interrupted by the manager's shutdown; the next leader will redo it", "reason", err.Error())
		return ctrl.Result{}, nil
	}
	res.Priority = ptr.To(knownPriority)
	return res, err
}

// reconcile brings one grant's derived Secret and status up to date: load, decide, act, report
// (Reconcile runs it so that a manager shutdown is quiet: grant_shutdown.go).
func (r *GrantReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	g := r.grantKind().newObject()
	if err := r.Get(ctx, req.NamespacedName, g); err != nil {
		if apierrors.IsNotFound(err) {
			r.writes.forget(req.NamespacedName)
			r.TokenIndex.Remove(req.NamespacedName)
			return ctrl.Result{}, r.releaseSecretWatch(ctx, req.Namespace)
		}
		return ctrl.Result{}, err
	}
	if !g.GetDeletionTimestamp().IsZero() {
		return r.finalize(ctx, g)
	}
	if err := r.syncFinalizer(ctx, g); err != nil {
		return ctrl.Result{}, err
	}
	if !r.SecretMeta.Synced(g.GetNamespace()) {
		// The namespace's Secret watch has just started; decide once it has listed them.
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	obs, stale, err := r.load(ctx, g)
	if err != nil {
		return ctrl.Result{}, err
	}
	if stale {
		// Deciding on a cache that lacks our own last write could repeat a token request.
		return ctrl.Result{RequeueAfter: cacheLagRetry}, nil
	}
	if r.Decided != nil {
		defer r.Decided(req.NamespacedName, obs.Now)
	}

	p := plan.Decide(obs.Observation)
	report := p.Report
	if p.Refresh {
		out, err := r.act(ctx, obs, p.Why)
		if err != nil {
			if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
				// A Secret changed (or the derived Secret was created: a security event's
				// record) under us: look again with the newer version.
				return ctrl.Result{RequeueAfter: time.Second}, nil
			}
			return ctrl.Result{}, err
		}
		report = plan.Record(obs.Observation, out)
	}
	return r.report(ctx, g, r.ensureConsent(ctx, g, report, obs.Now))
}

// releaseSecretWatch stops watching a namespace's Secrets once it holds no grants.
// The watch is shared by both grant kinds' controllers: grants of either keep it.
func (r *GrantReconciler) releaseSecretWatch(ctx context.Context, ns string) error {
	for _, kind := range []grantKind{googleGrants, providerGrants} {
		grants := kind.newList()
		if err := r.List(ctx, grants, client.InNamespace(ns), client.Limit(1)); err != nil {
			return err
		}
		if meta.LenList(grants) > 0 {
			return nil
		}
	}
	if !r.clientSecretsIn(ctx, ns) {
		r.SecretMeta.Release(ns)
		r.credentials().ForgetNamespace(ns)
	}
	return nil
}

// clientSecretsIn reports whether a client object's Secret is in the namespace (its
// controller needs that namespace's Secret watch too).
func (r *GrantReconciler) clientSecretsIn(ctx context.Context, ns string) bool {
	lists := []client.ObjectList{&oauthv1alpha1.GoogleOAuthClientList{}}
	if !r.namespacesOnly {
		lists = append(lists, &oauthv1alpha1.ClusterGoogleOAuthClientList{})
	}
	for _, l := range lists {
		// On an error, keep watching: that costs memory, not correctness.
		if err := r.List(ctx, l, client.MatchingFields{clientSecretIndex: ns}); err != nil || meta.LenList(l) > 0 {
			return true
		}
	}
	// Provider clients are few: listed, not indexed.
	return len(clientsInNamespace(ctx, r.Client, ns, r.namespacesOnly, r.ManagerNamespace)) > 0
}

// grantKind is the kind reconciled (GoogleOAuthGrant when not set up otherwise).
func (r *GrantReconciler) grantKind() grantKind {
	if r.kind.name == "" {
		return googleGrants
	}
	return r.kind
}

// credentials is the reconciler's grantinputs.Reader.
func (r *GrantReconciler) credentials() *grantinputs.Reader {
	r.inputsOnce.Do(func() {
		r.inputs.Meta, r.inputs.Live, r.inputs.Writer = r.cachedSecretMeta, r.APIReader, r.Client
	})
	return &r.inputs
}

// syncFinalizer adds the revoke finalizer for deletionPolicy Revoke and removes it otherwise.
func (r *GrantReconciler) syncFinalizer(ctx context.Context, g oauthv1alpha1.Grant) error {
	want := g.Settings().DeletionPolicy == oauthv1alpha1.DeletionPolicyRevoke
	if want == controllerutil.ContainsFinalizer(g, oauthv1alpha1.RevokeFinalizer) {
		return nil
	}
	before := copyGrant(g)
	if want {
		controllerutil.AddFinalizer(g, oauthv1alpha1.RevokeFinalizer)
	} else {
		controllerutil.RemoveFinalizer(g, oauthv1alpha1.RevokeFinalizer)
	}
	return patchFinalizers(ctx, r.Client, before, g)
}

// patchFinalizers writes g's finalizers as a merge patch guarded by resourceVersion: only
// that field is sent, so nothing the cache trims (managedFields) is written back.
func patchFinalizers(ctx context.Context, c client.Client, before, g oauthv1alpha1.Grant) error {
	return c.Patch(ctx, g, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}
