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
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
)

// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthclients;clustergoogleoauthclients,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.grantkeeper.dev,resources=googleoauthclients/status;clustergoogleoauthclients/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

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
	c, err := grantinputs.GetClient(ctx, r.Client, r.kind, req.NamespacedName, r.managerNamespace)
	if err != nil || c == nil {
		return ctrl.Result{}, err
	}
	if c.Secret.Namespace != "" && !r.SecretMeta.Synced(c.Secret.Namespace) {
		// Watch the Secret's namespace first, so that a later change to it wakes us.
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	cur := googleClientStatus(c.Obj)
	st := cur.DeepCopy()
	st.ObservedGeneration = c.Obj.GetGeneration()
	status, reason, msg := metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid, ""
	switch parsed, problem, err := r.check(ctx, c); {
	case err != nil:
		return ctrl.Result{}, err
	case problem != nil:
		status, reason, msg = metav1.ConditionFalse, problem.Reason, problem.Message
		st.ClientID = ""
	default:
		msg = fmt.Sprintf("Secret %q in namespace %q holds a well-formed OAuth client.", c.Secret.Name, c.Secret.Namespace)
		st.ClientID = parsed.ID
	}
	old := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: c.Obj.GetGeneration(), LastTransitionTime: metav1.NewTime(time.Now().UTC().Truncate(time.Second))})
	if equality.Semantic.DeepEqual(st, cur) {
		return ctrl.Result{}, nil
	}
	before := c.Obj.DeepCopyObject().(client.Object)
	*cur = *st
	if err := r.Status().Patch(ctx, c.Obj, client.MergeFrom(before)); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if changed && status != metav1.ConditionTrue && r.Recorder != nil {
		r.Recorder.Eventf(c.Obj, nil, "Warning", reason, "Validate", "%s", msg)
	}
	return ctrl.Result{}, nil
}

// check reads the client's Secret live (client objects are few, and change rarely) and parses it.
func (r *clientReconciler) check(ctx context.Context, c *grantinputs.ClientObject) (credentials.Client, *credentials.Problem, error) {
	if c.Secret.Namespace == "" {
		return credentials.Client{}, &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound,
			Message: fmt.Sprintf("%s names no namespace and the manager does not know its own (set POD_NAMESPACE or --manager-namespace); set spec.SecretRef.namespace", c.Field())}, nil
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, c.Secret, s); err != nil {
		if apierrors.IsNotFound(err) {
			return credentials.Client{}, grantinputs.SecretNotFound(c.Secret, c.Field(), "client"), nil
		}
		return credentials.Client{}, nil, err
	}
	parsed, p := credentials.ParseClient(s.Name, s.Data)
	return parsed, p, nil
}

// googleClientStatus is a Google client object's status, to write in place.
func googleClientStatus(o client.Object) *oauthv1alpha1.GoogleOAuthClientStatus {
	if c, ok := o.(*oauthv1alpha1.ClusterGoogleOAuthClient); ok {
		return &c.Status
	}
	return &o.(*oauthv1alpha1.GoogleOAuthClient).Status
}
