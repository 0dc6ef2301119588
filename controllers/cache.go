// Cache shaping: what the manager's caches hold of each object, and in what form (memory
// per grant, issue 34; foreign labelled Secrets cost no memory, issue 28).

package controllers

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
)

func managedSelector(op selection.Operator) labels.Selector {
	req, err := labels.NewRequirement(oauthv1alpha1.ManagedByLabel, op, []string{oauthv1alpha1.ManagedByValue})
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// CacheOptions are the manager's cache options: of all Secrets it caches only those
// grantkeeper writes (labelled managed-by=grantkeeper). Caching every Secret in a large
// cluster costs gigabytes (cert-manager #4722). No namespaces means all of them.
func CacheOptions(namespaces ...string) cache.Options {
	return cache.Options{
		DefaultNamespaces: namespaceConfig(namespaces),
		// managedFields are never read here and are often the largest part of an object.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:                  {Label: managedSelector(selection.Equals), Transform: trimDerivedSecret},
			&oauthv1alpha1.GoogleOAuthGrant{}: {Transform: trimGrant},
			&oauthv1alpha1.OAuthGrant{}:       {Transform: trimGrant},
		},
	}
}

// trimDerivedSecret keeps of a derived Secret what decisions read (derivedsecret.Summarize).
// Publishing replaces a derived Secret's data wholesale, so nothing dropped is written back.
// Anyone who may create Secrets can put our label on them, so of a labelled Secret that no
// grant controls and that is not one of our link records (consent.IsLinkSecret) only the
// metadata decisions read is kept (trimForeign): memory does not grow with their size.
func trimDerivedSecret(obj any) (any, error) {
	if s, ok := obj.(*corev1.Secret); ok {
		s.ManagedFields = nil
		controlled := grantControls(s)
		switch {
		case controlled:
			boundAnnotations(s)
		case consent.IsLinkSecret(s):
		default:
			trimForeign(s)
		}
		if derivedsecret.Summarize(s) {
			internSecretStrings(s) // its maps are shared or its own summary already
		} else {
			if controlled && dataSize(s) > maxControlledData {
				// Not in our exact shape, and larger than any derived Secret (a withdrawn
				// one is a few bytes): the next publish rewrites it whole, so its data is
				// never read, and a Secret claiming a grant as its controller is no way to
				// make us hold megabytes.
				s.Data = nil
			}
			internSecret(s)
		}
	}
	return obj, nil
}

// grantControls reports whether a grant (of either kind) is s's controller (a derived Secret).
func grantControls(s *corev1.Secret) bool {
	ref := metav1.GetControllerOfNoCopy(s)
	return ref != nil && (ref.Kind == oauthv1alpha1.KindGoogleOAuthGrant || ref.Kind == oauthv1alpha1.KindOAuthGrant) && ref.APIVersion == oauthv1alpha1.GroupVersion.String()
}

// maxControlledData bounds the data kept of a Secret a grant controls that is not in a
// derived Secret's exact shape (an access token is at most a few KiB).
const maxControlledData = 16 << 10

func dataSize(s *corev1.Secret) int {
	n := 0
	for k, v := range s.Data {
		n += len(k) + len(v)
	}
	return n
}

// maxAnnotationBytes bounds the annotations kept of a Secret a grant controls: beyond it
// only grantkeeper's own are kept, and the next publish writes only those back.
const maxAnnotationBytes = 16 << 10

func boundAnnotations(s *corev1.Secret) {
	n := 0
	for k, v := range s.Annotations {
		n += len(k) + len(v)
	}
	if n <= maxAnnotationBytes {
		return
	}
	kept := map[string]string{}
	for _, k := range derivedsecret.ReadAnnotations {
		if v, ok := s.Annotations[k]; ok {
			kept[k] = v
		}
	}
	s.Annotations = kept
}

// trimForeign reduces a labelled Secret no grant controls to what decisions read: identity,
// version, our labels (an orphaned derived Secret is recognised by them), one owner
// reference (its controller, else the first: whether it has one matters) and its type. A
// derived Secret whose owner reference was removed by hand is taken back by a publish that
// writes its data and our labels and annotation anew.
func trimForeign(s *corev1.Secret) {
	var labels map[string]string
	for _, k := range []string{oauthv1alpha1.ManagedByLabel, oauthv1alpha1.GrantLabel, consent.ForLabel} {
		if v, ok := s.Labels[k]; ok {
			if labels == nil {
				labels = map[string]string{}
			}
			labels[k] = v
		}
	}
	var refs []metav1.OwnerReference
	if ref := metav1.GetControllerOfNoCopy(s); ref != nil {
		refs = []metav1.OwnerReference{*ref}
	} else if len(s.OwnerReferences) > 0 {
		refs = s.OwnerReferences[:1:1]
	}
	s.ObjectMeta = metav1.ObjectMeta{
		Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion,
		Labels: labels, OwnerReferences: refs, DeletionTimestamp: s.DeletionTimestamp,
	}
	s.Data, s.StringData, s.Immutable = nil, nil, nil
}

// trimGrant drops what no decision reads and can be large: managedFields and kubectl's
// last-applied-configuration (a copy of the whole object). Grants are written only with
// patches of the fields we own (status, finalizers), so nothing dropped is written back.
func trimGrant(obj any) (any, error) {
	switch g := obj.(type) {
	case *oauthv1alpha1.GoogleOAuthGrant:
		g.ManagedFields = nil
		delete(g.Annotations, corev1.LastAppliedConfigAnnotation)
		internGrant(g)
	case *oauthv1alpha1.OAuthGrant:
		g.ManagedFields = nil
		delete(g.Annotations, corev1.LastAppliedConfigAnnotation)
	}
	return obj, nil
}

func namespaceConfig(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	m := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		m[ns] = cache.Config{}
	}
	return m
}

// keepReferenceFields trims a cached Secret's metadata to what the controller reads: identity,
// version (for the inputs fingerprint) and owner references (to spot name collisions).
// Annotations such as kubectl's last-applied-configuration and managedFields can hold the
// whole Secret, data included; dropping them keeps tens of thousands of Secrets cheap.
func keepReferenceFields(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	m.ObjectMeta = metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		OwnerReferences: boundedOwners(m.OwnerReferences), DeletionTimestamp: m.DeletionTimestamp,
	}
	internTypeMeta(&m.TypeMeta)
	internMeta(&m.ObjectMeta)
	return m, nil
}

// boundedOwners keeps of a Secret's owner references its controller, or else the first:
// decisions ask only who controls it (and whether anything owns it), and anyone who may
// create Secrets could add thousands.
func boundedOwners(refs []metav1.OwnerReference) []metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return refs[i : i+1 : i+1]
		}
	}
	if len(refs) > 1 {
		return refs[:1:1]
	}
	return refs
}
