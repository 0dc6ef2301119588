package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Grant is what every grant kind (GoogleOAuthGrant, OAuthGrant) gives the controller: the
// object, the settings all kinds share, and its status (one type for every kind). The
// controller's steps take a Grant; what only one kind has (a Google grant's credential forms,
// a provider grant's grant type) is read where that kind's credentials are resolved
// (internal/grantinputs), never by type switches scattered through the steps.
// +kubebuilder:object:generate=false
type Grant interface {
	metav1.Object
	runtime.Object
	// GrantKind is the kind's name (KindGoogleOAuthGrant, KindOAuthGrant).
	GrantKind() string
	// Settings are the spec fields every kind has, with their defaults applied.
	Settings() GrantSettings
	// GrantStatus is the status, for reading and writing in place.
	GrantStatus() *GrantStatus
	// TargetSecretName is the derived Secret's name: spec.accessTokenSecretName or
	// <name>-access-token.
	TargetSecretName() string
	// RefreshTokenSecretName and RefreshTokenKey are where the refresh token is ("" when
	// the grant has none: a service account's, a client credentials grant's).
	RefreshTokenSecretName() string
	RefreshTokenKey() string
}

// The grant kinds' names.
const (
	KindGoogleOAuthGrant = "GoogleOAuthGrant"
	KindOAuthGrant       = "OAuthGrant"
)

// GrantSettings are the spec fields every grant kind has.
type GrantSettings struct {
	Scopes         []string
	LoginHint      string
	RefreshBefore  *metav1.Duration
	DeletionPolicy DeletionPolicy
}

func (g *GoogleOAuthGrant) GrantKind() string { return KindGoogleOAuthGrant }

func (g *GoogleOAuthGrant) Settings() GrantSettings {
	return GrantSettings{Scopes: g.Spec.Scopes, LoginHint: g.Spec.LoginHint, RefreshBefore: g.Spec.RefreshBefore, DeletionPolicy: g.Spec.DeletionPolicy}
}

func (g *GoogleOAuthGrant) GrantStatus() *GrantStatus { return &g.Status }

func (g *OAuthGrant) GrantKind() string { return KindOAuthGrant }

func (g *OAuthGrant) Settings() GrantSettings {
	return GrantSettings{Scopes: g.Spec.Scopes, LoginHint: g.Spec.LoginHint, RefreshBefore: g.Spec.RefreshBefore, DeletionPolicy: g.Spec.DeletionPolicy}
}

func (g *OAuthGrant) GrantStatus() *GrantStatus { return &g.Status }

// RefreshTokenSecretName is spec.refreshTokenSecretRef's Secret ("" with ClientCredentials).
func (g *OAuthGrant) RefreshTokenSecretName() string {
	if r := g.Spec.RefreshTokenSecretRef; r != nil {
		return r.Name
	}
	return ""
}

// ClusterScopedClient reports whether a client kind is cluster-scoped.
func ClusterScopedClient(kind string) bool {
	return kind == KindClusterGoogleOAuthClient || kind == KindClusterOAuthClient
}

// NamespacedClientKind is the namespaced client kind of a client kind's family
// (GoogleOAuthClient for the Google kinds, OAuthClient for the others).
func NamespacedClientKind(kind string) string {
	if kind == KindOAuthClient || kind == KindClusterOAuthClient {
		return KindOAuthClient
	}
	return KindGoogleOAuthClient
}

var (
	_ Grant = &GoogleOAuthGrant{}
	_ Grant = &OAuthGrant{}
)
