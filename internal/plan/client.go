package plan

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// ClientReasons are the Ready reasons about a grant's spec.clientRef. Like bad input they do
// not heal by retrying, but Decide looks at the client object on every reconcile, so a grant
// reporting one recovers as soon as the client is usable again.
var ClientReasons = []string{oauthv1alpha1.ReasonClientNotFound, oauthv1alpha1.ReasonClientNotReady, oauthv1alpha1.ReasonClientNotAllowed}

// ClientState is what the reconciler saw of the client object a grant's spec.clientRef names.
type ClientState struct {
	Kind, Name string
	Found      bool
	// Allowed: the client admits the grant's namespace (always, for a GoogleOAuthClient).
	Allowed bool
	// NotAllowedWhy, when set, replaces the ClientNotAllowed message's explanation.
	NotAllowedWhy string
	// Ready is the client's Ready condition, nil when it has not reported one for its
	// current generation yet.
	Ready *metav1.Condition
}

// ClientReady is a client object's Ready condition when it describes the object's current
// generation, else nil (the client controller has not looked at this spec yet).
func ClientReady(generation, observedGeneration int64, conditions []metav1.Condition) *metav1.Condition {
	c := meta.FindStatusCondition(conditions, oauthv1alpha1.ConditionReady)
	if c == nil || observedGeneration != generation {
		return nil
	}
	return c
}

// Admission is which namespaces a cluster client (of either family) admits: its
// spec.namespaces and spec.namespaceSelector.
type Admission struct {
	Namespaces []string
	Selector   *metav1.LabelSelector
}

// NamespaceAllowed reports whether a cluster client admits a namespace: when it names no
// namespaces and has no (or an empty) selector, every namespace; else a namespace listed in
// spec.namespaces or whose labels match a non-empty spec.namespaceSelector. An invalid
// selector admits nothing.
func NamespaceAllowed(spec Admission, ns string, nsLabels map[string]string) bool {
	sel := spec.Selector
	emptySel := sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0)
	if emptySel && len(spec.Namespaces) == 0 {
		return true
	}
	if slices.Contains(spec.Namespaces, ns) {
		return true
	}
	if emptySel {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(nsLabels))
}

// clientProblem is why a grant cannot use its client now: a Ready reason and message, or
// wait when the client has not reported on its current spec yet. Both empty: usable (or the
// grant has no clientRef).
func clientProblem(g oauthv1alpha1.Grant, c *ClientState) (reason, msg string, wait bool) {
	if c == nil {
		return "", "", false
	}
	what := fmt.Sprintf("%s %q", c.Kind, c.Name)
	switch {
	case !c.Found:
		where := fmt.Sprintf(" in namespace %q", g.GetNamespace())
		if oauthv1alpha1.ClusterScopedClient(c.Kind) {
			where = ""
		}
		return oauthv1alpha1.ReasonClientNotFound, fmt.Sprintf("%s (spec.clientRef) not found%s; create it, and the grant will pick it up within seconds. No token requests are made until then.", what, where), false
	case !c.Allowed && c.NotAllowedWhy != "":
		return oauthv1alpha1.ReasonClientNotAllowed, fmt.Sprintf("%s (spec.clientRef) cannot be used: %s. No token requests are made until then.", what, c.NotAllowedWhy), false
	case !c.Allowed:
		return oauthv1alpha1.ReasonClientNotAllowed, fmt.Sprintf("%s (spec.clientRef) does not admit namespace %q (its spec.namespaceSelector and spec.namespaces); ask its administrator to admit the namespace, or use %s in this namespace. No token requests are made until then; the derived Secret keeps its last token until it expires.", what, g.GetNamespace(), withArticle(oauthv1alpha1.NamespacedClientKind(c.Kind))), false
	case c.Ready == nil:
		return "", "", true
	case c.Ready.Status != metav1.ConditionTrue:
		return oauthv1alpha1.ReasonClientNotReady, fmt.Sprintf("%s (spec.clientRef) is not Ready (%s: %s); fix it, and the grant will pick it up within seconds. No token requests are made until then.", what, c.Ready.Reason, c.Ready.Message), false
	}
	return "", "", false
}

// Fingerprints of grants with a clientRef have two parts, "<own>/<client>": the grant's own
// inputs (spec, refresh-token Secret) and the shared client's (the client object and its
// Secret). A change of the client's part alone, such as a rotated client secret, makes no
// token request by itself: a thousand grants on one client would all refresh at once. The
// next scheduled refresh uses the new secret; only a grant stuck on a permanent failure
// tries again at once.
const fingerprintSep = "/"

// JoinFingerprint combines a grant's own and its shared client's fingerprints.
func JoinFingerprint(own, client string) string {
	if client == "" {
		return own
	}
	return own + fingerprintSep + client
}

// inputsChanged compares the observed fingerprint with the one the status recorded.
func inputsChanged(observed, recorded string) (own, client bool) {
	oOwn, oClient, _ := strings.Cut(observed, fingerprintSep)
	rOwn, rClient, _ := strings.Cut(recorded, fingerprintSep)
	return oOwn != rOwn, oClient != rClient
}

// withArticle is a client kind with its indefinite article, for messages.
func withArticle(kind string) string {
	if kind == oauthv1alpha1.KindOAuthClient {
		return "an " + kind
	}
	return "a " + kind
}
