package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GrantType is how an OAuthGrant obtains access tokens.
// +kubebuilder:validation:Enum=RefreshToken;ClientCredentials
type GrantType string

const (
	// GrantTypeRefreshToken: a person's refresh token (refreshTokenSecretRef, or a consent link).
	GrantTypeRefreshToken GrantType = "RefreshToken"
	// GrantTypeClientCredentials: the client's own token (RFC 6749 section 4.4): no person,
	// no refresh token.
	GrantTypeClientCredentials GrantType = "ClientCredentials"
)

// OAuthClientReference names an OAuthClient in the grant's namespace or a ClusterOAuthClient.
type OAuthClientReference struct {
	// Kind of the client object: OAuthClient (in the grant's namespace) or ClusterOAuthClient.
	// +kubebuilder:validation:Enum=OAuthClient;ClusterOAuthClient
	// +kubebuilder:default=OAuthClient
	// +optional
	Kind string `json:"kind,omitempty"`

	// Name of the client object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// OAuthGrantSpec describes a grant at any standards-following OAuth 2.0 provider to keep an
// access token fresh for.
// +kubebuilder:validation:XValidation:rule="(has(self.grantType) && self.grantType == 'ClientCredentials') != has(self.refreshTokenSecretRef)",message="spec.refreshTokenSecretRef is required with grantType RefreshToken (the default), and not allowed with ClientCredentials"
// +kubebuilder:validation:XValidation:rule="!has(self.grantType) || self.grantType != 'ClientCredentials' || !has(self.loginHint)",message="spec.loginHint is for consent links: not allowed with grantType ClientCredentials"
// +kubebuilder:validation:XValidation:rule="!has(self.grantType) || self.grantType != 'ClientCredentials' || !has(self.deletionPolicy) || self.deletionPolicy != 'Revoke'",message="spec.deletionPolicy Revoke is not allowed with grantType ClientCredentials: there is no refresh token to revoke"
type OAuthGrantSpec struct {
	// ClientRef names the OAuthClient (in the grant's namespace) or the ClusterOAuthClient
	// (which must admit the namespace) that the grant's tokens are issued to.
	ClientRef OAuthClientReference `json:"clientRef"`

	// GrantType: RefreshToken (default: a person's refresh token, in
	// refreshTokenSecretRef) or ClientCredentials (the client's own token).
	// +kubebuilder:default=RefreshToken
	// +optional
	GrantType GrantType `json:"grantType,omitempty"`

	// RefreshTokenSecretRef names the Secret and key holding the refresh token: required
	// with grantType RefreshToken. A rotated refresh token is written back to it.
	// +optional
	RefreshTokenSecretRef *RefreshTokenSecretReference `json:"refreshTokenSecretRef,omitempty"`

	// Scopes the grant's tokens carry, sent as scope in every token request: a token
	// carrying scopes outside them is not published (ExcessScopes), and the ScopesGranted
	// condition reports any of them missing.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	// +optional
	Scopes []string `json:"scopes,omitempty"`

	// Resources are the RFC 8707 resource indicators (absolute URIs without a fragment)
	// sent as resource in every token request, for providers that issue tokens per resource
	// (Entra ID's v1 endpoint, OAuth 2.1 servers in front of agent tools).
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:XValidation:rule="isURL(self) && url(self).getScheme() != '' && !self.contains('#')",message="a resource indicator is an absolute URI without a fragment (RFC 8707)"
	// +optional
	Resources []string `json:"resources,omitempty"`

	// Audience is sent as audience in every token request, for providers that need it
	// (Auth0's API identifier; Ory Hydra takes a space-separated list).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Audience string `json:"audience,omitempty"`

	// LoginHint is sent as login_hint in consent links: the account expected to consent
	// (an email address or the provider's user name). Only with grantType RefreshToken.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=254
	// +optional
	LoginHint string `json:"loginHint,omitempty"`

	// AccessTokenSecretName is the name of the Secret, in the grant's namespace, that the
	// controller writes the access token to (keys access_token, token_type, expiry and
	// token.json). Default: <grant name>-access-token. An existing Secret of that name that
	// this grant does not own is never touched.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	AccessTokenSecretName string `json:"accessTokenSecretName,omitempty"`

	// RefreshBefore is how long before the access token expires to refresh it, for example
	// 15m. Default: one third of the token's actual lifetime. A value not shorter than the
	// lifetime falls back to the default.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="refreshBefore must be a positive duration such as 15m"
	// +optional
	RefreshBefore *metav1.Duration `json:"refreshBefore,omitempty"`

	// DeletionPolicy is what happens to the refresh token when the grant is deleted:
	// Retain (default) leaves it valid; Revoke revokes it at the provider's RFC 7009
	// revocation endpoint first (refused when the client has none).
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// OAuthGrant keeps a fresh OAuth 2.0 access token from any standards-following provider,
// obtained with a refresh token (rotated tokens written back) or the client credentials
// grant, in a Secret that pods can mount.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oag,categories=grantkeeper
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Client",type=string,JSONPath=`.spec.clientRef.name`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Account",type=string,JSONPath=`.status.account.email`
// +kubebuilder:printcolumn:name="Consent",type=string,JSONPath=`.status.consent`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OAuthGrant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   OAuthGrantSpec `json:"spec"`
	Status GrantStatus    `json:"status,omitempty"`
}

// OAuthGrantList contains a list of OAuthGrant.
// +kubebuilder:object:root=true
type OAuthGrantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthGrant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&OAuthGrant{}, &OAuthGrantList{})
}

// TargetSecretName is the derived Secret's name: spec.accessTokenSecretName or <name>-access-token.
func (g *OAuthGrant) TargetSecretName() string {
	if g.Spec.AccessTokenSecretName != "" {
		return g.Spec.AccessTokenSecretName
	}
	return g.Name + "-access-token"
}

// ClientRefKind is spec.clientRef.kind, defaulted.
func (g *OAuthGrant) ClientRefKind() string {
	if g.Spec.ClientRef.Kind == "" {
		return KindOAuthClient
	}
	return g.Spec.ClientRef.Kind
}

// Type is spec.grantType, defaulted.
func (g *OAuthGrant) Type() GrantType {
	if g.Spec.GrantType == "" {
		return GrantTypeRefreshToken
	}
	return g.Spec.GrantType
}

// RefreshTokenKey is the key of refreshTokenSecretRef, defaulted.
func (g *OAuthGrant) RefreshTokenKey() string {
	if r := g.Spec.RefreshTokenSecretRef; r != nil && r.Key != "" {
		return r.Key
	}
	return DefaultRefreshTokenKey
}
