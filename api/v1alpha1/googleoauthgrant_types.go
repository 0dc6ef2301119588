package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeletionPolicy says what happens to the refresh token when a grant is deleted.
// +kubebuilder:validation:Enum=Retain;Revoke
type DeletionPolicy string

const (
	// DeletionPolicyRetain leaves the refresh token valid at Google.
	DeletionPolicyRetain DeletionPolicy = "Retain"
	// DeletionPolicyRevoke revokes the refresh token at Google before the grant goes away.
	DeletionPolicyRevoke DeletionPolicy = "Revoke"
)

// ConsentStatus is status.consent.
// +kubebuilder:validation:Enum=Required
type ConsentStatus string

// ConsentRequired: a person must authorize the grant, and a consent link is offered (in the
// grant's link Secret: kubectl grantkeeper consent-link NAME).
const ConsentRequired ConsentStatus = "Required"

const (
	// RefreshRequestedAtAnnotation requests a manual refresh: set it to an RFC 3339 time
	// newer than status.lastRefreshTime (`kubectl annotate gog NAME oauth.grantkeeper.dev/refresh-requested-at=$(date -u +%FT%TZ) --overwrite`).
	RefreshRequestedAtAnnotation = "oauth.grantkeeper.dev/refresh-requested-at"
	// RefreshTokenForAnnotation on a refresh-token Secret lists (comma-separated) the grants
	// grantkeeper may write refresh tokens into it for (a consent, a rotated token): it sets
	// it on the Secrets it creates; set it on your own Secret to allow the same.
	RefreshTokenForAnnotation = "oauth.grantkeeper.dev/refresh-token-for"
	// GrantLabel on a derived Secret names the grant that owns it.
	GrantLabel = "oauth.grantkeeper.dev/grant"
	// ManagedByLabel / ManagedByValue mark every Secret grantkeeper writes.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "grantkeeper"
	// RevokeFinalizer holds deletion of a grant with deletionPolicy Revoke until the
	// refresh token has been revoked (or revocation was given up on).
	RevokeFinalizer = "oauth.grantkeeper.dev/revoke"
)

// Keys of the derived access-token Secret (a contract: pods read these files).
const (
	AccessTokenKey = "access_token"
	TokenTypeKey   = "token_type"
	ExpiryKey      = "expiry"
	TokenJSONKey   = "token.json"
)

// Keys read from the user's Secrets.
const (
	DefaultRefreshTokenKey = "refresh_token"
	ClientIDKey            = "client_id"
	ClientSecretKey        = "client_secret"
	ClientSecretJSONKey    = "client_secret.json"
)

// ClientSecretReference names a Secret, in the grant's namespace, that holds the OAuth client:
// either the keys client_id and client_secret, or the single key client_secret.json holding
// the client JSON downloaded from the Google Cloud console (a "web" or "installed" client).
type ClientSecretReference struct {
	// Name of the Secret in the grant's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// RefreshTokenSecretReference names a Secret, in the grant's namespace, and the key in it
// that holds the refresh token. Surrounding whitespace, such as the trailing newline that
// `kubectl create secret --from-file` keeps, is ignored.
type RefreshTokenSecretReference struct {
	// Name of the Secret in the grant's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data that holds the refresh token.
	// +kubebuilder:default=refresh_token
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// AuthorizedUserSecretReference names a Secret, in the grant's namespace, and the key in it
// that holds gcloud's Application Default Credentials for a user: the JSON that
// `gcloud auth application-default login --client-id-file=...` writes
// ({"type": "authorized_user", "client_id", "client_secret", "refresh_token", ...}).
type AuthorizedUserSecretReference struct {
	// Name of the Secret in the grant's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data that holds the credentials JSON.
	// +kubebuilder:default=credentials.json
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// ServiceAccountKeySecretReference names a Secret, in the grant's namespace, and the key in
// it that holds a service account's JSON key as the Google Cloud console downloads it
// ({"type": "service_account", "client_email", "private_key", "private_key_id", ...}).
type ServiceAccountKeySecretReference struct {
	// Name of the Secret in the grant's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data that holds the key JSON.
	// +kubebuilder:default=credentials.json
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// GoogleOAuthGrantSpec describes a Google user grant to keep an access token fresh for.
// The credentials come from exactly one source: refreshTokenSecretRef with either
// clientSecretRef or clientRef, authorizedUserSecretRef alone (it carries its own client), or
// serviceAccountKeySecretRef (with scopes).
// +kubebuilder:validation:XValidation:rule="has(self.authorizedUserSecretRef) || has(self.serviceAccountKeySecretRef) || has(self.refreshTokenSecretRef)",message="spec.refreshTokenSecretRef is required (or use spec.authorizedUserSecretRef or spec.serviceAccountKeySecretRef instead of both Secret references)"
// +kubebuilder:validation:XValidation:rule="has(self.serviceAccountKeySecretRef) || (has(self.clientSecretRef) ? 1 : 0) + (has(self.clientRef) ? 1 : 0) + (has(self.authorizedUserSecretRef) ? 1 : 0) == 1",message="set exactly one of spec.clientSecretRef, spec.clientRef and spec.authorizedUserSecretRef (the last carries its own client), or use spec.serviceAccountKeySecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.authorizedUserSecretRef) || !has(self.refreshTokenSecretRef)",message="spec.authorizedUserSecretRef holds the refresh token: set either it or spec.refreshTokenSecretRef, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountKeySecretRef) || (!has(self.authorizedUserSecretRef) && !has(self.clientSecretRef) && !has(self.clientRef) && !has(self.refreshTokenSecretRef))",message="spec.serviceAccountKeySecretRef is a credential source of its own: remove spec.authorizedUserSecretRef, spec.clientSecretRef, spec.clientRef and spec.refreshTokenSecretRef, or remove it"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountKeySecretRef) || (has(self.scopes) && size(self.scopes) > 0)",message="spec.scopes is required with spec.serviceAccountKeySecretRef: a service account names its scopes in every token request"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountKeySecretRef) || !has(self.deletionPolicy) || self.deletionPolicy != 'Revoke'",message="spec.deletionPolicy Revoke is not allowed with spec.serviceAccountKeySecretRef: there is no refresh token to revoke (delete the key in the Google Cloud console instead)"
// +kubebuilder:validation:XValidation:rule="!has(self.subject) || has(self.serviceAccountKeySecretRef)",message="spec.subject is only allowed with spec.serviceAccountKeySecretRef (domain-wide delegation acts as that user)"
type GoogleOAuthGrantSpec struct {
	// ClientSecretRef names the Secret holding the OAuth client's credentials.
	// Set exactly one of clientSecretRef, clientRef and authorizedUserSecretRef.
	// +optional
	ClientSecretRef *ClientSecretReference `json:"clientSecretRef,omitempty"`

	// ClientRef names a GoogleOAuthClient in the grant's namespace, or a
	// ClusterGoogleOAuthClient that admits the namespace, instead of clientSecretRef: one
	// client object serves many grants and its secret lives in one Secret.
	// +optional
	ClientRef *ClientReference `json:"clientRef,omitempty"`

	// RefreshTokenSecretRef names the Secret and key holding the user's refresh token.
	// Required unless authorizedUserSecretRef is set.
	// +optional
	RefreshTokenSecretRef *RefreshTokenSecretReference `json:"refreshTokenSecretRef,omitempty"`

	// AuthorizedUserSecretRef names a Secret holding gcloud's Application Default
	// Credentials for a user (client and refresh token in one JSON), instead of
	// clientSecretRef and refreshTokenSecretRef. A rotated refresh token is written back
	// into that JSON.
	// +optional
	AuthorizedUserSecretRef *AuthorizedUserSecretReference `json:"authorizedUserSecretRef,omitempty"`

	// ServiceAccountKeySecretRef names a Secret holding a service account's JSON key: the
	// controller signs a JWT assertion with it and exchanges it for an access token, for
	// the service account itself or, with subject, for a Workspace user through
	// domain-wide delegation. Requires scopes; deletionPolicy Revoke is not allowed.
	// +optional
	ServiceAccountKeySecretRef *ServiceAccountKeySecretReference `json:"serviceAccountKeySecretRef,omitempty"`

	// Subject is the user (email address) a service account acts as through domain-wide
	// delegation. Only with serviceAccountKeySecretRef.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=320
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
	// +optional
	Subject string `json:"subject,omitempty"`

	// Scopes the grant must carry. When set, the ScopesGranted condition reports any of
	// them missing from the scopes Google says the access token has. Refreshing never
	// asks for new scopes: that takes a new consent.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +optional
	Scopes []string `json:"scopes,omitempty"`

	// LoginHint is the email address of the Google account expected to consent through a
	// consent link: Google preselects it, and a consent by any other account is refused
	// (nothing is stored). Optional.
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
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
	// 15m. Default: one third of the token's actual lifetime (20 minutes for Google's
	// one-hour tokens). A value not shorter than the lifetime falls back to the default.
	// Keep it longer than the time your pods need to see a new token (kubelet Secret sync,
	// about a minute by default).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="refreshBefore must be a positive duration such as 15m"
	// +optional
	RefreshBefore *metav1.Duration `json:"refreshBefore,omitempty"`

	// DeletionPolicy is what happens to the refresh token when the grant is deleted:
	// Retain (default) leaves it valid; Revoke revokes it at Google first.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// GrantStatus is the observed state of a grant, of every kind (GoogleOAuthGrant, OAuthGrant):
// the controller's steps are shared, and so is what they report. Times are whole seconds.
type GrantStatus struct {
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

	// GrantedScopes are the scopes Google says the current access token carries.
	// +listType=atomic
	// +optional
	GrantedScopes []string `json:"grantedScopes,omitempty"`

	// RefreshTokenExpiresAt is when the refresh token itself stops working; set only when
	// Google reported it (time-based access).
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
	// Secrets used by the last token request (no secret material). After a permanent
	// failure the controller makes no new request until it changes.
	// +optional
	InputsFingerprint string `json:"inputsFingerprint,omitempty"`

	// Consent is Required while a person must authorize (or re-authorize, or grant missing
	// scopes to) this grant and a consent link is offered. The link itself is kept in the
	// grant's link Secret, readable only by those who may read Secrets in the namespace
	// (whoever opens it can attach their Google account): kubectl grantkeeper consent-link NAME.
	// +optional
	Consent ConsentStatus `json:"consent,omitempty"`

	// Account is the Google account the access token acts for, when known.
	// +optional
	Account *AccountStatus `json:"account,omitempty"`

	// ClientID is the id of the OAuth client the last token request used (not a secret:
	// it is in every consent URL); empty for a service account and before any request.
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// RevokeAttempts counts failed attempts to revoke the refresh token on deletion.
	// +optional
	RevokeAttempts int32 `json:"revokeAttempts,omitempty"`

	// Conditions: Ready, Revoked and (when spec.scopes is set) ScopesGranted.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AccountStatus identifies a Google account.
type AccountStatus struct {
	// Email of the account: for a service-account grant, spec.subject when set, else the
	// service account's email.
	// +optional
	Email string `json:"email,omitempty"`
	// Sub is Google's stable account id, when known.
	// +optional
	Sub string `json:"sub,omitempty"`
}

// GoogleOAuthGrant keeps a fresh Google OAuth 2.0 access token, obtained with a user's
// refresh token, in a Secret that pods can mount.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gog,categories=grantkeeper
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Account",type=string,JSONPath=`.status.account.email`
// +kubebuilder:printcolumn:name="Consent",type=string,JSONPath=`.status.consent`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GoogleOAuthGrant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GoogleOAuthGrantSpec `json:"spec,omitempty"`
	Status GrantStatus          `json:"status,omitempty"`
}

// GoogleOAuthGrantList contains a list of GoogleOAuthGrant.
// +kubebuilder:object:root=true
type GoogleOAuthGrantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GoogleOAuthGrant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GoogleOAuthGrant{}, &GoogleOAuthGrantList{})
}

// TargetSecretName is the derived Secret's name: spec.accessTokenSecretName or <name>-access-token.
func (g *GoogleOAuthGrant) TargetSecretName() string {
	if g.Spec.AccessTokenSecretName != "" {
		return g.Spec.AccessTokenSecretName
	}
	return g.Name + "-access-token"
}

// DefaultAuthorizedUserKey is the default key of authorizedUserSecretRef.
const DefaultAuthorizedUserKey = "credentials.json"

// UsesAuthorizedUser reports whether the grant takes gcloud's authorized_user JSON.
func (g *GoogleOAuthGrant) UsesAuthorizedUser() bool { return g.Spec.AuthorizedUserSecretRef != nil }

// UsesServiceAccount reports whether the grant takes a service-account key.
func (g *GoogleOAuthGrant) UsesServiceAccount() bool { return g.Spec.ServiceAccountKeySecretRef != nil }

// ServiceAccountKey is the key of serviceAccountKeySecretRef, defaulted.
func (g *GoogleOAuthGrant) ServiceAccountKey() string {
	if r := g.Spec.ServiceAccountKeySecretRef; r != nil && r.Key != "" {
		return r.Key
	}
	return DefaultAuthorizedUserKey
}

// ClientSecretName is the Secret holding the OAuth client (the authorized-user Secret in that form).
func (g *GoogleOAuthGrant) ClientSecretName() string {
	switch {
	case g.Spec.AuthorizedUserSecretRef != nil:
		return g.Spec.AuthorizedUserSecretRef.Name
	case g.Spec.ClientSecretRef != nil:
		return g.Spec.ClientSecretRef.Name
	}
	return ""
}

// RefreshTokenSecretName is the Secret holding the refresh token (the authorized-user Secret in that form).
func (g *GoogleOAuthGrant) RefreshTokenSecretName() string {
	switch {
	case g.Spec.AuthorizedUserSecretRef != nil:
		return g.Spec.AuthorizedUserSecretRef.Name
	case g.Spec.RefreshTokenSecretRef != nil:
		return g.Spec.RefreshTokenSecretRef.Name
	}
	return ""
}

// RefreshTokenKey is the key holding the refresh token (or the authorized-user JSON), defaulted.
func (g *GoogleOAuthGrant) RefreshTokenKey() string {
	switch {
	case g.Spec.AuthorizedUserSecretRef != nil:
		if g.Spec.AuthorizedUserSecretRef.Key != "" {
			return g.Spec.AuthorizedUserSecretRef.Key
		}
		return DefaultAuthorizedUserKey
	case g.Spec.RefreshTokenSecretRef != nil && g.Spec.RefreshTokenSecretRef.Key != "":
		return g.Spec.RefreshTokenSecretRef.Key
	}
	return DefaultRefreshTokenKey
}
