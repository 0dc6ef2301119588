// Package provider holds the controllers of the client kinds for any OAuth 2.0 provider
// (issue 30): the OAuthClient and ClusterOAuthClient status (Ready, the endpoints in use,
// when the issuer's metadata was last read). OAuthGrants are reconciled by the grant
// controller (controllers/grant_*), which reads these clients through internal/grantinputs.
package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/egress"
	"github.com/grantkeeper/grantkeeper/internal/oauthdiscovery"
	"github.com/grantkeeper/grantkeeper/internal/oauthtoken"
)

// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=oauthclients;clusteroauthclients,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=oauthclients/status;clusteroauthclients/status,verbs=get;patch

// Defaults of ClientReconciler.
const (
	// DefaultDiscoveryInterval: how often a Ready client's issuer metadata is read again
	// (providers change endpoints rarely, and every grant's request uses the status).
	DefaultDiscoveryInterval = time.Hour
	// discoveryRetry: the first retry after a failed read, doubled up to the interval.
	discoveryRetry = 10 * time.Second
)

// ClientReconciler keeps an OAuthClient's or ClusterOAuthClient's status.
type ClientReconciler struct {
	// Client reads client objects from the cache and writes their status.
	Client client.Client
	// APIReader reads the client's Secrets live (client objects are few and change rarely;
	// Secrets are not cached).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Discovery reads issuers' metadata; nil is a Fetcher with Egress.
	Discovery *oauthdiscovery.Fetcher
	// Egress is where a tenant's issuerURL may lead (the zero Policy: public addresses only).
	Egress egress.Policy
	Clock  clock.PassiveClock
	// ManagerNamespace is where a ClusterOAuthClient's Secrets are when they name none.
	ManagerNamespace string
	// DiscoveryInterval: zero is DefaultDiscoveryInterval.
	DiscoveryInterval time.Duration
	// SecretMeta, when set, is asked to watch a Secret's namespace before it is read, so
	// that a change to the Secret wakes the client (SetupWithManager sets it).
	SecretMeta interface{ Synced(namespace string) bool }

	kind string
}

// view is either client kind as the reconciler needs it.
type view struct {
	obj      client.Object
	kind     string
	provider oauthv1alpha1.OAuthProvider
	status   *oauthv1alpha1.OAuthClientStatus
	// secret and key: the client secret's or the signing key's Secret (Namespace "" when a
	// cluster client names none and the manager's is unknown), and the key in it.
	secret types.NamespacedName
	key    string
	keyID  string
}

func (r *ClientReconciler) get(ctx context.Context, key types.NamespacedName) (*view, error) {
	var v *view
	switch r.kind {
	case oauthv1alpha1.KindClusterOAuthClient:
		o := &oauthv1alpha1.ClusterOAuthClient{}
		if err := r.Client.Get(ctx, types.NamespacedName{Name: key.Name}, o); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		v = &view{obj: o, kind: r.kind, provider: o.Spec.OAuthProvider, status: &o.Status}
		if s := o.Spec.ClientSecretRef; s != nil {
			v.secret, v.key = types.NamespacedName{Namespace: orDefault(s.Namespace, r.ManagerNamespace), Name: s.Name}, orDefault(s.Key, oauthv1alpha1.ClientSecretKey)
		}
		if s := o.Spec.PrivateKeySecretRef; s != nil {
			v.secret, v.key, v.keyID = types.NamespacedName{Namespace: orDefault(s.Namespace, r.ManagerNamespace), Name: s.Name}, orDefault(s.Key, oauthv1alpha1.DefaultPrivateKeyKey), s.KeyID
		}
	default:
		o := &oauthv1alpha1.OAuthClient{}
		if err := r.Client.Get(ctx, key, o); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		v = &view{obj: o, kind: oauthv1alpha1.KindOAuthClient, provider: o.Spec.OAuthProvider, status: &o.Status}
		if s := o.Spec.ClientSecretRef; s != nil {
			v.secret, v.key = types.NamespacedName{Namespace: o.Namespace, Name: s.Name}, orDefault(s.Key, oauthv1alpha1.ClientSecretKey)
		}
		if s := o.Spec.PrivateKeySecretRef; s != nil {
			v.secret, v.key, v.keyID = types.NamespacedName{Namespace: o.Namespace, Name: s.Name}, orDefault(s.Key, oauthv1alpha1.DefaultPrivateKeyKey), s.KeyID
		}
	}
	return v, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (v *view) field() string {
	if v.provider.AuthMethod() == oauthv1alpha1.AuthPrivateKeyJWT {
		return "spec.privateKeySecretRef"
	}
	return "spec.clientSecretRef"
}

// Reconcile checks the client's Secret and (re)reads the issuer's metadata when due, then
// writes the status when it changed.
func (r *ClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	v, err := r.get(ctx, req.NamespacedName)
	if err != nil || v == nil {
		return ctrl.Result{}, err
	}
	if v.secret.Name != "" && v.secret.Namespace != "" && r.SecretMeta != nil && !r.SecretMeta.Synced(v.secret.Namespace) {
		// Watch the Secret's namespace first, so that a later change to it wakes us.
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	now := r.Clock.Now().UTC().Truncate(time.Second)
	gen := v.obj.GetGeneration()
	st := v.status.DeepCopy()

	reason, msg, err := r.checkSecret(ctx, v)
	if err != nil {
		return ctrl.Result{}, err
	}

	// The endpoints: explicit ones win; the issuer's metadata is read when it was never read
	// for this spec, is due again, or the last read failed (then with backoff).
	explicit := oauthdiscovery.Endpoints{}
	if e := v.provider.Endpoints; e != nil {
		explicit = oauthdiscovery.Endpoints{AuthorizationURL: e.AuthorizationURL, TokenURL: e.TokenURL, RevocationURL: e.RevocationURL}
	}
	interval := r.DiscoveryInterval
	if interval == 0 {
		interval = DefaultDiscoveryInterval
	}
	sameSpec := st.ObservedGeneration == gen
	endpoints := oauthdiscovery.Resolve(explicit, nil)
	requeue := time.Duration(0)
	var discoveryErr error
	if v.provider.IssuerURL != "" {
		last := st.LastDiscoveryTime
		due := !sameSpec || last == nil || st.DiscoveryURL == "" || !now.Before(last.Add(interval)) || readyReason(st) == oauthv1alpha1.ReasonDiscoveryFailed
		var discovered *oauthdiscovery.Metadata
		if due {
			m, err := r.fetcher().Discover(ctx, v.provider.IssuerURL)
			if err == nil {
				discovered = &m
				st.DiscoveryURL, st.LastDiscoveryTime = m.Source, &metav1.Time{Time: now}
			} else {
				discoveryErr = err
			}
		}
		switch {
		case discovered != nil:
			endpoints = oauthdiscovery.Resolve(explicit, discovered)
			requeue = interval
		case sameSpec && st.Endpoints != nil && st.LastDiscoveryTime != nil:
			// Not due, or a failed re-read: the last good endpoints of this spec stay in use.
			endpoints = oauthdiscovery.Resolve(explicit, &oauthdiscovery.Metadata{
				AuthorizationEndpoint: st.Endpoints.AuthorizationURL, TokenEndpoint: st.Endpoints.TokenURL, RevocationEndpoint: st.Endpoints.RevocationURL})
			if requeue == 0 {
				requeue = max(st.LastDiscoveryTime.Add(interval).Sub(now), time.Second)
			}
		default:
			st.DiscoveryURL, st.LastDiscoveryTime = "", nil
		}
		if discoveryErr != nil {
			// Retry with backoff: as long again as it has been failing, from
			// discoveryRetry up to the interval. (A spec or Secret change retries at once.)
			since := now
			if c := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady); sameSpec && c != nil && c.Reason == oauthv1alpha1.ReasonDiscoveryFailed {
				since = c.LastTransitionTime.Time
			}
			requeue = min(max(now.Sub(since), discoveryRetry), interval)
		}
	}

	switch {
	case reason != "":
	case endpoints.TokenURL == "" && discoveryErr != nil:
		reason, msg = oauthv1alpha1.ReasonDiscoveryFailed, discoveryMessage(discoveryErr)
	case endpoints.TokenURL == "":
		// The issuer's metadata failed before (status kept no endpoints): wait for the retry.
		reason, msg = oauthv1alpha1.ReasonDiscoveryFailed, "the issuer's metadata has not been read yet; retrying"
	}
	status := metav1.ConditionFalse
	if reason == "" {
		status, reason, msg = metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid, readyMessage(v, endpoints, discoveryErr)
	}
	st.ObservedGeneration = gen
	st.ClientID = v.provider.ClientID
	st.Endpoints = &oauthv1alpha1.OAuthEndpointsStatus{AuthorizationURL: endpoints.AuthorizationURL, TokenURL: endpoints.TokenURL, RevocationURL: endpoints.RevocationURL}
	if *st.Endpoints == (oauthv1alpha1.OAuthEndpointsStatus{}) {
		st.Endpoints = nil
	}
	old := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(now)})
	if !equality.Semantic.DeepEqual(st, v.status) {
		before := v.obj.DeepCopyObject().(client.Object)
		*v.status = *st
		if err := r.Client.Status().Patch(ctx, v.obj, client.MergeFrom(before)); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return ctrl.Result{RequeueAfter: time.Second}, nil
			}
			return ctrl.Result{}, err
		}
		if changed && status != metav1.ConditionTrue && r.Recorder != nil {
			r.Recorder.Eventf(v.obj, nil, corev1.EventTypeWarning, reason, "Validate", "%s", msg)
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

func readyReason(st *oauthv1alpha1.OAuthClientStatus) string {
	if c := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func (r *ClientReconciler) fetcher() *oauthdiscovery.Fetcher {
	if r.Discovery != nil {
		return r.Discovery
	}
	return &oauthdiscovery.Fetcher{Egress: r.Egress}
}

func discoveryMessage(err error) string {
	var de *oauthdiscovery.Error
	what := err.Error()
	if errors.As(err, &de) && de.Transient {
		what += " (retrying)"
	}
	return what + ". Fix spec.issuerURL, or set spec.endpoints.tokenURL (and authorizationURL, revocationURL)."
}

func readyMessage(v *view, e oauthdiscovery.Endpoints, discoveryErr error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Client %q (%s) uses token endpoint %s", v.provider.ClientID, v.provider.AuthMethod(), e.TokenURL)
	if e.RevocationURL == "" {
		b.WriteString("; the provider has no revocation endpoint, so grants with deletionPolicy Revoke are refused")
	}
	if e.AuthorizationURL == "" {
		b.WriteString("; no authorization endpoint, so no consent links")
	}
	b.WriteString(".")
	if discoveryErr != nil {
		fmt.Fprintf(&b, " Re-reading the issuer's metadata failed (%v); the endpoints last read stay in use.", discoveryErr)
	}
	return b.String()
}

// checkSecret reads the Secret the auth method needs and checks it: a reason and message
// naming the Secret and key when it is unusable, "" when it is fine (or none is needed).
func (r *ClientReconciler) checkSecret(ctx context.Context, v *view) (reason, msg string, err error) {
	method := v.provider.AuthMethod()
	if method == oauthv1alpha1.AuthNone {
		return "", "", nil
	}
	if v.secret.Name == "" {
		// CEL refuses this; an object stored before the rule existed gets a clear reason.
		return oauthv1alpha1.ReasonSecretNotFound, fmt.Sprintf("tokenEndpointAuthMethod %s needs %s", method, v.field()), nil
	}
	if v.secret.Namespace == "" {
		return oauthv1alpha1.ReasonSecretNotFound, fmt.Sprintf("%s of %s %q names no namespace and the manager does not know its own (set POD_NAMESPACE or --manager-namespace); set %s.namespace", v.field(), v.kind, v.obj.GetName(), v.field()), nil
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, v.secret, s); err != nil {
		if apierrors.IsNotFound(err) {
			return oauthv1alpha1.ReasonSecretNotFound, fmt.Sprintf("Secret %q (%s) not found in namespace %q; create it, and the client will pick it up within seconds", v.secret.Name, v.field(), v.secret.Namespace), nil
		}
		return "", "", err
	}
	data, ok := s.Data[v.key]
	if !ok || strings.TrimSpace(string(data)) == "" {
		return oauthv1alpha1.ReasonSecretKeyMissing, fmt.Sprintf("Secret %q in namespace %q has no key %q, or it is empty (%s.key)", v.secret.Name, v.secret.Namespace, v.key, v.field()), nil
	}
	if method == oauthv1alpha1.AuthPrivateKeyJWT {
		if _, err := oauthtoken.ParsePrivateKey(data, v.keyID); err != nil {
			return oauthv1alpha1.ReasonInvalidPrivateKey, fmt.Sprintf("key %q of Secret %q in namespace %q cannot sign client assertions: %v", v.key, v.secret.Name, v.secret.Namespace, err), nil
		}
	}
	return "", "", nil
}
