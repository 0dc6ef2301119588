package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthclients;clustergoogleoauthclients,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthclients/status;clustergoogleoauthclients/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// clientObject is either OAuth client kind, as the controllers need it.
type clientObject struct {
	obj    client.Object
	kind   string
	status *oauthv1alpha1.GoogleOAuthClientStatus
	// secret is where the client's Secret is; secret.Namespace is "" when a cluster
	// client names no namespace and the manager's own is unknown.
	secret types.NamespacedName
	// cluster is the cluster client's spec, for its namespace conditions.
	cluster *oauthv1alpha1.ClusterGoogleOAuthClientSpec
}

// field names the client's Secret reference in messages.
func (c *clientObject) field() string {
	return fmt.Sprintf("spec.secretRef of %s %q", c.kind, c.obj.GetName())
}

// getClientObject reads a client object from the cache; nil when it does not exist.
func getClientObject(ctx context.Context, r client.Reader, kind string, key types.NamespacedName, managerNamespace string) (*clientObject, error) {
	var c *clientObject
	switch kind {
	case oauthv1alpha1.KindClusterGoogleOAuthClient:
		o := &oauthv1alpha1.ClusterGoogleOAuthClient{}
		c = &clientObject{obj: o, kind: kind, status: &o.Status, cluster: &o.Spec}
		key.Namespace = ""
		if err := r.Get(ctx, key, o); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		c.secret = o.SecretKey(managerNamespace)
	default:
		o := &oauthv1alpha1.GoogleOAuthClient{}
		c = &clientObject{obj: o, kind: oauthv1alpha1.KindGoogleOAuthClient, status: &o.Status}
		if err := r.Get(ctx, key, o); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		c.secret = o.SecretKey()
	}
	return c, nil
}

// clientReconciler keeps an OAuth client object's status: Ready (ClientValid, or what is
// wrong with its Secret, in the words used for grants) and the client id.
type clientReconciler struct {
	client.Client
	APIReader        client.Reader
	SecretMeta       SecretMetadata
	Recorder         events.EventRecorder
	kind             string
	managerNamespace string
}

func (r *clientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c, err := getClientObject(ctx, r.Client, r.kind, req.NamespacedName, r.managerNamespace)
	if err != nil || c == nil {
		return ctrl.Result{}, err
	}
	if c.secret.Namespace != "" && !r.SecretMeta.Synced(c.secret.Namespace) {
		// Watch the Secret's namespace first, so that a later change to it wakes us.
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	st := c.status.DeepCopy()
	st.ObservedGeneration = c.obj.GetGeneration()
	status, reason, msg := metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid, ""
	switch parsed, problem, err := r.check(ctx, c); {
	case err != nil:
		return ctrl.Result{}, err
	case problem != nil:
		status, reason, msg = metav1.ConditionFalse, problem.Reason, problem.Message
		st.ClientID = ""
	default:
		msg = fmt.Sprintf("Secret %q in namespace %q holds a well-formed OAuth client.", c.secret.Name, c.secret.Namespace)
		st.ClientID = parsed.ID
	}
	old := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: c.obj.GetGeneration(), LastTransitionTime: metav1.NewTime(time.Now().UTC().Truncate(time.Second))})
	if equality.Semantic.DeepEqual(st, c.status) {
		return ctrl.Result{}, nil
	}
	before := c.obj.DeepCopyObject().(client.Object)
	*c.status = *st
	if err := r.Status().Patch(ctx, c.obj, client.MergeFrom(before)); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if changed && status != metav1.ConditionTrue && r.Recorder != nil {
		r.Recorder.Eventf(c.obj, nil, "Warning", reason, "Validate", "%s", msg)
	}
	return ctrl.Result{}, nil
}

// check reads the client's Secret live (client objects are few, and change rarely) and parses it.
func (r *clientReconciler) check(ctx context.Context, c *clientObject) (credentials.Client, *credentials.Problem, error) {
	if c.secret.Namespace == "" {
		return credentials.Client{}, &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound,
			Message: fmt.Sprintf("%s names no namespace and the manager does not know its own (set POD_NAMESPACE or --manager-namespace); set spec.secretRef.namespace", c.field())}, nil
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, c.secret, s); err != nil {
		if apierrors.IsNotFound(err) {
			return credentials.Client{}, secretNotFound(c.secret, c.field(), "client"), nil
		}
		return credentials.Client{}, nil, err
	}
	parsed, p := credentials.ParseClient(s.Name, s.Data)
	return parsed, p, nil
}

// secretNotFound is the SecretNotFound problem for a Secret that field names; who is
// "grant" or "client", whichever picks the Secret up once created.
func secretNotFound(key types.NamespacedName, field, who string) *credentials.Problem {
	return &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound,
		Message: fmt.Sprintf("Secret %q (%s) not found in namespace %q; create it, and the %s will pick it up within seconds", key.Name, field, key.Namespace, who)}
}
