package writable

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func TestRefreshToken(t *testing.T) {
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns", UID: "u1"}}
	ref := func(name, uid string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: "oauth.grantkeeper.dev/v1alpha1", Kind: "GoogleOAuthGrant", Name: name, UID: "u1", Controller: ptr.To(controller)}
	}
	for _, tc := range []struct {
		name string
		meta metav1.ObjectMeta
		ok   bool
	}{
		{"someone's Secret", metav1.ObjectMeta{Name: "s"}, false},
		{"labelled managed-by only (another grant's, or forged by nobody who could not write it anyway)", metav1.ObjectMeta{Name: "s", Labels: map[string]string{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue}}, false},
		{"annotated for this grant", metav1.ObjectMeta{Name: "s", Annotations: map[string]string{oauthv1alpha1.RefreshTokenForAnnotation: "g"}}, true},
		{"annotated for several", metav1.ObjectMeta{Name: "s", Annotations: map[string]string{oauthv1alpha1.RefreshTokenForAnnotation: "a,g,b"}}, true},
		{"annotated for another grant", metav1.ObjectMeta{Name: "s", Annotations: map[string]string{oauthv1alpha1.RefreshTokenForAnnotation: "gx"}}, false},
		{"controlled by this grant", metav1.ObjectMeta{Name: "s", OwnerReferences: []metav1.OwnerReference{ref("g", "u1", true)}}, true},
		{"owned, not controlled", metav1.ObjectMeta{Name: "s", OwnerReferences: []metav1.OwnerReference{ref("g", "u1", false)}}, false},
		{"controlled by another grant", metav1.ObjectMeta{Name: "s", OwnerReferences: []metav1.OwnerReference{ref("h", "u1", true)}}, false},
	} {
		err := RefreshToken(&tc.meta, g)
		if (err == nil) != tc.ok {
			t.Errorf("%s: RefreshToken = %v", tc.name, err)
		}
		var werr *Error
		if err != nil && (!errors.As(err, &werr) || !strings.Contains(err.Error(), `"s"`) || !strings.Contains(err.Error(), "kubectl annotate --overwrite secret s -n ns "+oauthv1alpha1.RefreshTokenForAnnotation+"=")) {
			t.Errorf("%s: the error does not name the Secret and the fix: %v", tc.name, err)
		}
	}
}

func TestLinkSecret(t *testing.T) {
	ref := metav1.OwnerReference{APIVersion: "oauth.grantkeeper.dev/v1alpha1", Kind: "GoogleOAuthGrant", Name: "g", UID: "old"}
	for _, tc := range []struct {
		name string
		meta metav1.ObjectMeta
		ok   bool
	}{
		{"a Secret someone made under the name", metav1.ObjectMeta{Name: "grantkeeper-consent-g"}, false},
		{"owned by a grant of that name (an earlier one too)", metav1.ObjectMeta{Name: "grantkeeper-consent-g", OwnerReferences: []metav1.OwnerReference{ref}}, true},
		{"owned by another kind", metav1.ObjectMeta{Name: "grantkeeper-consent-g", OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "g"}}}, false},
		{"owned by another grant", metav1.ObjectMeta{Name: "grantkeeper-consent-g", OwnerReferences: []metav1.OwnerReference{{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: "h"}}}, false},
	} {
		if err := LinkSecret(&tc.meta, "g"); (err == nil) != tc.ok {
			t.Errorf("%s: LinkSecret = %v", tc.name, err)
		}
	}
}

func TestRefreshTokenAnnotation(t *testing.T) {
	for in, want := range map[string]string{"": "g", "a": "a,g", "g": "g", "a,g": "a,g"} {
		if got := RefreshTokenAnnotation(in, "g"); got != want {
			t.Errorf("RefreshTokenAnnotation(%q) = %q, want %q", in, got, want)
		}
	}
}
