// Package v1alpha1 contains the oauth.grantkeeper.dev/v1alpha1 API: GoogleOAuthGrant and its
// client kinds, and OAuthGrant and its client kinds for any standards-following provider.
// +kubebuilder:object:generate=true
// +groupName=oauth.grantkeeper.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "oauth.grantkeeper.dev", Version: "v1alpha1"}

	// SchemeBuilder is used to add go types to the GroupVersionKind scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
