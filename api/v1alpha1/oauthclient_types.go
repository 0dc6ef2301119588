package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kinds an OAuthGrant's spec.clientRef can name (a contract).
const (
	KindOAuthClient        = "OAuthClient"
	KindClusterOAuthClient = "ClusterOAuthClient"
)

// Reasons of the OAuthClient and ClusterOAuthClient Ready condition besides those the Google
// client kinds use (ClientValid, SecretNotFound, SecretKeyMissing, InvalidClientSecret).
const (
	// ReasonDiscoveryFailed: the issuer's metadata (RFC 8414, then OpenID discovery) could
	// not be read or is unusable, and spec.endpoints does not name every endpoint needed.
	ReasonDiscoveryFailed = "DiscoveryFailed"
	// ReasonInvalidPrivateKey: the private_key_jwt key in privateKeySecretRef cannot sign.
	ReasonInvalidPrivateKey = "InvalidPrivateKey"
)

// TokenEndpointAuthMethod is how the client authenticates at the token and revocation
// endpoints (the names of RFC 7591 and OpenID Connect).
// +kubebuilder:validation:Enum=client_secret_basic;client_secret_post;private_key_jwt;none
type TokenEndpointAuthMethod string

const (
	// AuthClientSecretBasic: HTTP Basic with client id and secret (RFC 6749 section 2.3.1).
	AuthClientSecretBasic TokenEndpointAuthMethod = "client_secret_basic"
	// AuthClientSecretPost: client_id and client_secret in the form body.
	AuthClientSecretPost TokenEndpointAuthMethod = "client_secret_post"
	// AuthPrivateKeyJWT: a JWT signed with the client's private key (RFC 7523 section 2.2).
	AuthPrivateKeyJWT TokenEndpointAuthMethod = "private_key_jwt"
	// AuthNone: a public client; it proves possession with PKCE only.
	AuthNone TokenEndpointAuthMethod = "none"
)

// Default keys of the OAuth client kinds' Secrets.
const (
	DefaultPrivateKeyKey = "private_key.pem"
)

// OAuthEndpoints are a provider's endpoints, given explicitly. A field set here wins over
// the same endpoint discovered from issuerURL.
type OAuthEndpoints struct {
	// AuthorizationURL is where a person consents (consent links). Needed for refresh-token
	// grants that are to be authorized through grantkeeper.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && (url(self).getHostname() == 'localhost' || url(self).getHostname() == '::1' || url(self).getHostname().startsWith('127.'))))",message="must be an https URL (http only to a loopback host)"
	// +optional
	AuthorizationURL string `json:"authorizationURL,omitempty"`

	// TokenURL is the token endpoint.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && (url(self).getHostname() == 'localhost' || url(self).getHostname() == '::1' || url(self).getHostname().startsWith('127.'))))",message="must be an https URL (http only to a loopback host)"
	// +optional
	TokenURL string `json:"tokenURL,omitempty"`

	// RevocationURL is the RFC 7009 revocation endpoint. Without one, deletionPolicy Revoke
	// is refused for grants of this client.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && (url(self).getHostname() == 'localhost' || url(self).getHostname() == '::1' || url(self).getHostname().startsWith('127.'))))",message="must be an https URL (http only to a loopback host)"
	// +optional
	RevocationURL string `json:"revocationURL,omitempty"`
}

// OAuthProvider is what both OAuth client kinds say about the provider and the client.
type OAuthProvider struct {
	// IssuerURL is the provider's issuer: its endpoints are read from
	// <issuer>/.well-known/oauth-authorization-server (RFC 8414), else
	// <issuer>/.well-known/openid-configuration (OpenID Connect Discovery), and the document's
	// issuer must be this URL. https, except to a loopback host. Set issuerURL, or
	// endpoints.tokenURL, or both.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && (url(self).getHostname() == 'localhost' || url(self).getHostname() == '::1' || url(self).getHostname().startsWith('127.'))))",message="must be an https URL (http only to a loopback host)"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="an issuer URL has no query or fragment (RFC 8414 section 2)"
	// +optional
	IssuerURL string `json:"issuerURL,omitempty"`

	// Endpoints given explicitly; each wins over the discovered one.
	// +optional
	Endpoints *OAuthEndpoints `json:"endpoints,omitempty"`

	// ClientID is the OAuth client's id (not a secret).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	ClientID string `json:"clientID"`

	// TokenEndpointAuthMethod is how the client authenticates: client_secret_basic
	// (default), client_secret_post (both with clientSecretRef), private_key_jwt (with
	// privateKeySecretRef) or none (a public client: consent links use PKCE, and no secret
	// is sent).
	// +kubebuilder:default=client_secret_basic
	// +optional
	TokenEndpointAuthMethod TokenEndpointAuthMethod `json:"tokenEndpointAuthMethod,omitempty"`
}

// OAuthClientSecretReference names a Secret in the client object's namespace and the key
// holding the client secret.
type OAuthClientSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data holding the client secret (surrounding whitespace ignored).
	// +kubebuilder:default=client_secret
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// PrivateKeySecretReference names a Secret in the client object's namespace and the key
// holding the private_key_jwt signing key: a PEM private key (PKCS #8, PKCS #1 or SEC 1),
// RSA (signs RS256) or ECDSA P-256/P-384/P-521 (ES256/ES384/ES512).
type PrivateKeySecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data holding the PEM key.
	// +kubebuilder:default=private_key.pem
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`

	// KeyID is the JWT header's kid: the id of the public key registered with the provider
	// (many providers require it).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	KeyID string `json:"keyID,omitempty"`
}

// ClusterOAuthClientSecretReference is OAuthClientSecretReference in any namespace.
type ClusterOAuthClientSecretReference struct {
	OAuthClientSecretReference `json:",inline"`

	// Namespace of the Secret. Default: the namespace grantkeeper's manager runs in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ClusterPrivateKeySecretReference is PrivateKeySecretReference in any namespace.
type ClusterPrivateKeySecretReference struct {
	PrivateKeySecretReference `json:",inline"`

	// Namespace of the Secret. Default: the namespace grantkeeper's manager runs in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// OAuthClientSpec describes an OAuth 2.0 client of any standards-following provider.
// +kubebuilder:validation:XValidation:rule="has(self.issuerURL) || (has(self.endpoints) && has(self.endpoints.tokenURL))",message="set spec.issuerURL (endpoints are discovered from it) or spec.endpoints.tokenURL"
// +kubebuilder:validation:XValidation:rule="(has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod in ['private_key_jwt', 'none']) != has(self.clientSecretRef)",message="spec.clientSecretRef is required with tokenEndpointAuthMethod client_secret_basic (the default) or client_secret_post, and not allowed with private_key_jwt or none"
// +kubebuilder:validation:XValidation:rule="(has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod == 'private_key_jwt') == has(self.privateKeySecretRef)",message="spec.privateKeySecretRef is required with tokenEndpointAuthMethod private_key_jwt, and not allowed otherwise"
type OAuthClientSpec struct {
	OAuthProvider `json:",inline"`

	// ClientSecretRef names the Secret (in this namespace) and key holding the client
	// secret: required with client_secret_basic and client_secret_post.
	// +optional
	ClientSecretRef *OAuthClientSecretReference `json:"clientSecretRef,omitempty"`

	// PrivateKeySecretRef names the Secret (in this namespace) and key holding the
	// private_key_jwt signing key: required with private_key_jwt.
	// +optional
	PrivateKeySecretRef *PrivateKeySecretReference `json:"privateKeySecretRef,omitempty"`
}

// ClusterOAuthClientSpec is OAuthClientSpec for grants in the namespaces it admits.
// +kubebuilder:validation:XValidation:rule="has(self.issuerURL) || (has(self.endpoints) && has(self.endpoints.tokenURL))",message="set spec.issuerURL (endpoints are discovered from it) or spec.endpoints.tokenURL"
// +kubebuilder:validation:XValidation:rule="(has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod in ['private_key_jwt', 'none']) != has(self.clientSecretRef)",message="spec.clientSecretRef is required with tokenEndpointAuthMethod client_secret_basic (the default) or client_secret_post, and not allowed with private_key_jwt or none"
// +kubebuilder:validation:XValidation:rule="(has(self.tokenEndpointAuthMethod) && self.tokenEndpointAuthMethod == 'private_key_jwt') == has(self.privateKeySecretRef)",message="spec.privateKeySecretRef is required with tokenEndpointAuthMethod private_key_jwt, and not allowed otherwise"
type ClusterOAuthClientSpec struct {
	OAuthProvider `json:",inline"`

	// ClientSecretRef names the Secret and key holding the client secret: required with
	// client_secret_basic and client_secret_post.
	// +optional
	ClientSecretRef *ClusterOAuthClientSecretReference `json:"clientSecretRef,omitempty"`

	// PrivateKeySecretRef names the Secret and key holding the private_key_jwt signing key:
	// required with private_key_jwt.
	// +optional
	PrivateKeySecretRef *ClusterPrivateKeySecretReference `json:"privateKeySecretRef,omitempty"`

	// NamespaceSelector admits the namespaces whose labels match. Absent or empty (with
	// spec.namespaces also empty) admits every namespace.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="matchExpressions operators must be In, NotIn, Exists or DoesNotExist"
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Namespaces admits these namespaces by name. A namespace is admitted when it matches
	// either this list or namespaceSelector.
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
}

// OAuthEndpointsStatus are the endpoints in use: spec.endpoints over the discovered ones.
type OAuthEndpointsStatus struct {
	// +optional
	AuthorizationURL string `json:"authorizationURL,omitempty"`
	// +optional
	TokenURL string `json:"tokenURL,omitempty"`
	// +optional
	RevocationURL string `json:"revocationURL,omitempty"`
}

// OAuthClientStatus is the observed state of an OAuthClient or ClusterOAuthClient.
type OAuthClientStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// ClientID is the OAuth client's id (not a secret).
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// Endpoints in use: each of spec.endpoints, else the discovered one.
	// +optional
	Endpoints *OAuthEndpointsStatus `json:"endpoints,omitempty"`

	// DiscoveryURL is the metadata document the discovered endpoints came from.
	// +optional
	DiscoveryURL string `json:"discoveryURL,omitempty"`

	// LastDiscoveryTime is when the issuer's metadata was last read successfully.
	// +optional
	LastDiscoveryTime *metav1.Time `json:"lastDiscoveryTime,omitempty"`

	// Conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// OAuthClient is an OAuth 2.0 client of any standards-following provider (Entra ID, Okta,
// Auth0, Keycloak, Slack...) that the OAuthGrants in its namespace name in spec.clientRef.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oac,categories=grantkeeper
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Client ID",type=string,JSONPath=`.spec.clientID`
// +kubebuilder:printcolumn:name="Token URL",type=string,JSONPath=`.status.endpoints.tokenURL`,priority=1
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuerURL`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OAuthClient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   OAuthClientSpec   `json:"spec"`
	Status OAuthClientStatus `json:"status,omitempty"`
}

// OAuthClientList contains a list of OAuthClient.
// +kubebuilder:object:root=true
type OAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthClient `json:"items"`
}

// ClusterOAuthClient is an OAuth 2.0 client that OAuthGrants in the namespaces it admits
// name in spec.clientRef (kind ClusterOAuthClient).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=coac,categories=grantkeeper
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Client ID",type=string,JSONPath=`.spec.clientID`
// +kubebuilder:printcolumn:name="Token URL",type=string,JSONPath=`.status.endpoints.tokenURL`,priority=1
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuerURL`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterOAuthClient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterOAuthClientSpec `json:"spec"`
	Status OAuthClientStatus      `json:"status,omitempty"`
}

// ClusterOAuthClientList contains a list of ClusterOAuthClient.
// +kubebuilder:object:root=true
type ClusterOAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterOAuthClient `json:"items"`
}

func init() {
	SchemeBuilder.Register(&OAuthClient{}, &OAuthClientList{}, &ClusterOAuthClient{}, &ClusterOAuthClientList{})
}

// AuthMethod is spec.tokenEndpointAuthMethod, defaulted.
func (p *OAuthProvider) AuthMethod() TokenEndpointAuthMethod {
	if p.TokenEndpointAuthMethod == "" {
		return AuthClientSecretBasic
	}
	return p.TokenEndpointAuthMethod
}
