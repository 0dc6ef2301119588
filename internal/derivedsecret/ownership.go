package derivedsecret

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// ConflictError says why a grant cannot use its derived Secret's name: a Secret it does not
// own has it, or it is one of the grant's own input Secrets. grantkeeper never writes there.
type ConflictError struct {
	Name string
	// Owner describes the Secret's controller ("no controller" or `controller Kind "name"`);
	// empty when the name is one of the grant's input Secrets.
	Owner string
}

func (e *ConflictError) Error() string {
	if e.Owner == "" {
		return fmt.Sprintf("the access-token Secret name %q is also a referenced Secret; set spec.accessTokenSecretName to another name", e.Name)
	}
	return fmt.Sprintf("Secret %q already exists and is not owned by this grant (it has %s); grantkeeper never overwrites it. Delete or rename it, or set spec.accessTokenSecretName to another name", e.Name, e.Owner)
}

func conflict(s metav1.Object) *ConflictError {
	owner := "no controller"
	if ref := metav1.GetControllerOfNoCopy(s); ref != nil {
		owner = fmt.Sprintf("controller %s %q", ref.Kind, ref.Name)
	}
	return &ConflictError{Name: s.GetName(), Owner: owner}
}

// Readers are where Lookup looks.
type Readers struct {
	// Managed holds the Secrets grantkeeper labels, in full (the manager's cache).
	Managed client.Reader
	// Meta answers Gets of *metav1.PartialObjectMetadata for the other Secrets.
	Meta client.Reader
	// Live reads the API server: an unlabelled Secret of ours is read in full from there.
	Live client.Reader
}

// Lookup finds g's derived Secret. It returns nil when there is none yet, a *ConflictError
// when the name is unusable, and otherwise the Secret: ours, or an orphan of ours (labels
// naming g, owner reference removed by hand), which the next Publish takes back.
// inputs are the names of the Secrets g reads.
func Lookup(ctx context.Context, rd Readers, g oauthv1alpha1.Grant, inputs []string) (*corev1.Secret, error) {
	name := g.TargetSecretName()
	for _, in := range inputs {
		if in == name {
			return nil, &ConflictError{Name: name}
		}
	}
	key := types.NamespacedName{Namespace: g.GetNamespace(), Name: name}
	s := &corev1.Secret{}
	switch err := rd.Managed.Get(ctx, key, s); {
	case err == nil:
		if !OwnedBy(s, string(g.GetUID())) && !Orphaned(s, g.GetName()) {
			return nil, conflict(s)
		}
		return s, nil
	case !apierrors.IsNotFound(err):
		return nil, err
	}
	// Not among the Secrets we label: is an unlabelled Secret of that name there?
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := rd.Meta.Get(ctx, key, m); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if !OwnedBy(m, string(g.GetUID())) {
		return nil, conflict(m)
	}
	// Ours, but someone removed our labels: read it live so that Publish can repair it.
	if err := rd.Live.Get(ctx, key, s); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return s, nil
}

// Publish writes t into g's derived Secret, existing (as Lookup returned it) or a new one,
// with g as its controller, and returns the Secret as written. An update carries existing's
// resourceVersion, so a Secret changed since it was read is not overwritten blindly: the
// caller gets a Conflict and looks again.
func Publish(ctx context.Context, c client.Client, scheme *runtime.Scheme, g oauthv1alpha1.Grant, existing *corev1.Secret, t Token) (*corev1.Secret, error) {
	s := existing.DeepCopy()
	if s == nil {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: g.GetNamespace(), Name: g.TargetSecretName()}}
	}
	Apply(s, g.GetName(), t)
	if err := controllerutil.SetControllerReference(g, s, scheme); err != nil {
		return nil, err
	}
	if existing == nil {
		if err := c.Create(ctx, s); err != nil {
			return nil, fmt.Errorf("creating access-token Secret %q: %w", s.Name, err)
		}
		return s, nil
	}
	if err := c.Update(ctx, s); err != nil {
		return nil, fmt.Errorf("updating access-token Secret %q: %w", s.Name, err)
	}
	return s, nil
}
