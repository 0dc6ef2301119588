// Package writable decides which existing Secrets grantkeeper may write for a grant. Someone
// who may edit grants but not Secrets must not be able to make grantkeeper write (or adopt,
// and later garbage-collect) a Secret of theirs: grantkeeper writes only Secrets it created
// for the grant or that the grant already owns, and otherwise names the Secret in an error
// and writes nothing. Pure: the callers read and write.
package writable

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Error says which Secret grantkeeper will not write for a grant, why, and how to allow it.
type Error struct {
	Secret string
	// What the Secret is for the grant ("refresh-token", "consent-link").
	What string
	Fix  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("grantkeeper will not write the %s Secret %q: it did not create it for this grant and the grant does not own it, so it wrote nothing; %s",
		e.What, e.Secret, e.Fix)
}

// ownerRef reports whether o has an owner reference to a GoogleOAuthGrant named name (and,
// when uid is set, with that uid).
func ownerRef(o metav1.Object, name, uid string) (metav1.OwnerReference, bool) {
	for _, r := range o.GetOwnerReferences() {
		gv, err := schema.ParseGroupVersion(r.APIVersion)
		if err == nil && gv.Group == oauthv1alpha1.GroupVersion.Group && r.Kind == "GoogleOAuthGrant" && r.Name == name && (uid == "" || string(r.UID) == uid) {
			return r, true
		}
	}
	return metav1.OwnerReference{}, false
}

// RefreshToken says whether grantkeeper may write g's refresh token into the existing
// Secret s: s names g in its RefreshTokenForAnnotation (grantkeeper sets it on the Secrets
// a consent creates; a person who may write the Secret can set it), or g is s's controller.
func RefreshToken(s metav1.Object, g *oauthv1alpha1.GoogleOAuthGrant) error {
	if slices.Contains(strings.Split(s.GetAnnotations()[oauthv1alpha1.RefreshTokenForAnnotation], ","), g.Name) {
		return nil
	}
	if r, ok := ownerRef(s, g.Name, string(g.UID)); ok && r.Controller != nil && *r.Controller {
		return nil
	}
	return &Error{Secret: s.GetName(), What: "refresh-token",
		Fix: fmt.Sprintf("to let grantkeeper store this grant's refresh tokens there, someone who may write the Secret runs `kubectl annotate --overwrite secret %s -n %s %s=%s`, or point spec.refreshTokenSecretRef at a Secret that does not exist yet (grantkeeper creates it)",
			s.GetName(), g.Namespace, oauthv1alpha1.RefreshTokenForAnnotation, RefreshTokenAnnotation(s.GetAnnotations()[oauthv1alpha1.RefreshTokenForAnnotation], g.Name))}
}

// LinkSecret says whether the existing Secret s is grant's consent-link Secret: it has an
// owner reference to a GoogleOAuthGrant of that name (from this grant, or from an earlier
// grant of the same name, whose Secret the garbage collector is about to remove), which
// only grantkeeper or someone who may write Secrets can have put there.
func LinkSecret(s metav1.Object, grant string) error {
	if _, ok := ownerRef(s, grant, ""); ok {
		return nil
	}
	return &Error{Secret: s.GetName(), What: "consent-link",
		Fix: "grantkeeper keeps the grant's consent link under that name: delete or rename that Secret (it is not grantkeeper's), or rename the grant"}
}

// RefreshTokenAnnotation is the annotation value that lets grants write a Secret, with
// grant added.
func RefreshTokenAnnotation(current, grant string) string {
	names := strings.FieldsFunc(current, func(r rune) bool { return r == ',' })
	if !slices.Contains(names, grant) {
		names = append(names, grant)
	}
	return strings.Join(names, ",")
}
