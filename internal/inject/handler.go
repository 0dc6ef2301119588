package inject

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// GetGrant looks a grant up; it returns (nil, nil) when there is none. The manager passes a
// function over its client.
type GetGrant func(ctx context.Context, namespace, name string) (*oauthv1alpha1.GoogleOAuthGrant, error)

// Handler is the admission handler for Pod CREATE.
type Handler struct {
	Config   Config
	GetGrant GetGrant
	// Limit, when set, takes one admission from namespace's share; false (and how long to
	// wait) when that namespace is over it. Every request comes from the API server, so a
	// per-address limit would let one namespace that creates annotated Pods fast use up
	// every other namespace's injections (which failurePolicy Ignore would then admit
	// without the sidecar); a share per namespace keeps the flood in the flooder's namespace.
	Limit func(namespace string) (wait time.Duration, ok bool)
}

var _ admission.Handler = (*Handler)(nil)

// Handle admits every Pod. One without the annotation gets no patch at all, so it is stored
// exactly as sent. The grant is looked up only in the namespace the request is for (where
// the API server admits the Pod): an object naming another namespace is refused without a
// lookup, so no answer carries another namespace's grant (its Secret name, its scopes, or
// whether it exists).
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	name, ok := Wants(&pod)
	if !ok {
		return admission.Allowed("")
	}
	sent := pod.Namespace
	switch {
	case req.Namespace == "":
		return admission.Denied("the admission request names no namespace: a Pod is always created in one")
	case pod.Namespace != "" && pod.Namespace != req.Namespace:
		return admission.Denied(fmt.Sprintf("the Pod's metadata.namespace %q is not the namespace %q it is created in", pod.Namespace, req.Namespace))
	}
	if h.Limit != nil {
		if wait, ok := h.Limit(req.Namespace); !ok {
			return tooMany(req.Namespace, wait)
		}
	}
	pod.Namespace = req.Namespace // often unset in the object on CREATE: it comes from the path
	var grant *Grant
	var warnings []string
	g, err := h.GetGrant(ctx, req.Namespace, name)
	switch {
	case err == nil && g != nil:
		grant = GrantFrom(g)
	case err != nil && !apierrors.IsNotFound(err):
		// Cannot tell: inject with the default Secret name rather than fail the Pod.
		warnings = append(warnings, "could not read GoogleOAuthGrant "+name+": "+err.Error()+"; assuming its Secret is "+name+"-access-token")
		grant = &Grant{SecretName: name + "-access-token"}
	}
	out, w, err := Mutate(&pod, grant, h.Config)
	if err != nil {
		return admission.Denied(err.Error())
	}
	if out == &pod { // nothing injected (hostNetwork): no patch
		return admission.Allowed("").WithWarnings(append(warnings, w...)...)
	}
	out.Namespace = sent // patch only what injection adds
	patched, err := json.Marshal(out)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, patched).WithWarnings(append(warnings, w...)...)
}

// tooMany refuses the Pod (429, with when to retry) rather than admitting it without the
// sidecar: the Pod's controller retries, and the Pod never runs without the token it asked for.
func tooMany(namespace string, wait time.Duration) admission.Response {
	secs := int32(max(1, math.Ceil(wait.Seconds())))
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusTooManyRequests,
			Reason:  metav1.StatusReasonTooManyRequests,
			Message: fmt.Sprintf("grantkeeper: namespace %s is creating Pods that ask for injection faster than its share of the webhook allows; retry in %d s", namespace, secs),
			Details: &metav1.StatusDetails{RetryAfterSeconds: secs},
		},
	}}
}
