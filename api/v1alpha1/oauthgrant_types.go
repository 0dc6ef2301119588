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

// OAuthGrantStatus is the observed state of an OAuthGrant. Its fields are those of
// GoogleOAuthGrantStatus, in the same order, so that the code both kinds share converts one
// into the other (GoogleOAuthGrantStatus(s)) instead of keeping a copy per kind.
type OAuthGrantStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// AccessTokenSecretName is the Secret holding the current access token.
	// +optional
	AccessTokenSecretName string `json:"accessTokenSecretName,omitempty"`

	// ExpiresAt is when the access token now in the derived Secret expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// RefreshTime is when the next refresh is due (after a failure: the next retry).
	// +optional
	RefreshTime *metav1.Time `json:"refreshTime,omitempty"`

	// LastRefreshTime is when the access token now in the derived Secret was obtained.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`

	// GrantedScopes are the scopes the provider says the current access token carries.
	// +listType=atomic
	// +optional
	GrantedScopes []string `json:"grantedScopes,omitempty"`

	// RefreshTokenExpiresAt is when the refresh token itself stops working, when the
	// provider reported it (refresh_token_expires_in).
	// +optional
	RefreshTokenExpiresAt *metav1.Time `json:"refreshTokenExpiresAt,omitempty"`

	// FailedRefreshAttempts counts refresh failures since the last success.
	// +optional
	FailedRefreshAttempts int32 `json:"failedRefreshAttempts,omitempty"`

	// LastFailureTime is when the last refresh failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// LastHandledRefreshRequest is the value of the oauth.grantkeeper.dev/refresh-requested-at
	// annotation that was last acted on, so a manual request is honoured exactly once.
	// +optional
	LastHandledRefreshRequest string `json:"lastHandledRefreshRequest,omitempty"`

	// InputsFingerprint identifies the spec generation and the versions of the referenced
	// Secrets and client used by the last token request (no secret material). After a
	// permanent failure the controller makes no new request until it changes.
	// +optional
	InputsFingerprint string `json:"inputsFingerprint,omitempty"`

	// Consent is Required while a person must authorize (or re-authorize) this grant and a
	// consent link is offered (kubectl grantkeeper consent-link NAME).
	// +optional
	Consent ConsentStatus `json:"consent,omitempty"`

	// Account is the account the tokens act for, from the ID token when the provider
	// issues one (scope openid).
	// +optional
	Account *AccountStatus `json:"account,omitempty"`

	// ClientID is the id of the OAuth client the last token request used.
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// RevokeAttempts counts failed attempts to revoke the refresh token on deletion.
	// +optional
	RevokeAttempts int32 `json:"revokeAttempts,omitempty"`

	// Conditions: Ready, Revoked and (when spec.scopes is set) ScopesGranted, with the
	// reasons of GoogleOAuthGrant.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
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

	Spec   OAuthGrantSpec   `json:"spec"`
	Status OAuthGrantStatus `json:"status,omitempty"`
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

// The two status types stay convertible: a field added to one must be added to the other.
var _ = GoogleOAuthGrantStatus(OAuthGrantStatus{})
