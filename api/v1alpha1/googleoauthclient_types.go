package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Kinds a grant's spec.clientRef can name (a contract).
const (
	KindGoogleOAuthClient        = "GoogleOAuthClient"
	KindClusterGoogleOAuthClient = "ClusterGoogleOAuthClient"
)

// ClientObjectSecretReference names a Secret in the client object's namespace.
type ClientObjectSecretReference struct {
	// Name of the Secret, which holds either client_id and client_secret, or
	// client_secret.json (the client JSON downloaded from the Google Cloud console).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ClusterClientSecretReference names a Secret in any namespace.
type ClusterClientSecretReference struct {
	// Name of the Secret, which holds either client_id and client_secret, or
	// client_secret.json (the client JSON downloaded from the Google Cloud console).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the Secret. Default: the namespace grantkeeper's manager runs in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// GoogleOAuthClientSpec names the Secret holding a Google OAuth client.
type GoogleOAuthClientSpec struct {
	// SecretRef names the Secret, in this object's namespace, holding the OAuth client.
	SecretRef ClientObjectSecretReference `json:"secretRef"`
}

// ClusterGoogleOAuthClientSpec names the Secret holding a Google OAuth client and the
// namespaces whose grants may use it.
type ClusterGoogleOAuthClientSpec struct {
	// SecretRef names the Secret holding the OAuth client.
	SecretRef ClusterClientSecretReference `json:"secretRef"`

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

// GoogleOAuthClientStatus is the observed state of an OAuth client object.
type GoogleOAuthClientStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// ClientID is the OAuth client's id (not a secret).
	// +optional
	ClientID string `json:"clientID,omitempty"`

	// Conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GoogleOAuthClient is a Google OAuth client that the grants in its namespace can name in
// spec.clientRef, so the client secret lives in one Secret.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=goc,categories=grantkeeper
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Client ID",type=string,JSONPath=`.status.clientID`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GoogleOAuthClient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GoogleOAuthClientSpec   `json:"spec"`
	Status GoogleOAuthClientStatus `json:"status,omitempty"`
}

// GoogleOAuthClientList contains a list of GoogleOAuthClient.
// +kubebuilder:object:root=true
type GoogleOAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GoogleOAuthClient `json:"items"`
}

// ClusterGoogleOAuthClient is a Google OAuth client that grants in the namespaces it admits
// can name in spec.clientRef (kind ClusterGoogleOAuthClient).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cgoc,categories=grantkeeper
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Client ID",type=string,JSONPath=`.status.clientID`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterGoogleOAuthClient struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterGoogleOAuthClientSpec `json:"spec"`
	Status GoogleOAuthClientStatus      `json:"status,omitempty"`
}

// ClusterGoogleOAuthClientList contains a list of ClusterGoogleOAuthClient.
// +kubebuilder:object:root=true
type ClusterGoogleOAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterGoogleOAuthClient `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GoogleOAuthClient{}, &GoogleOAuthClientList{}, &ClusterGoogleOAuthClient{}, &ClusterGoogleOAuthClientList{})
}

// ClientReference names a GoogleOAuthClient in the grant's namespace or a ClusterGoogleOAuthClient.
type ClientReference struct {
	// Kind of the client object: GoogleOAuthClient (in the grant's namespace) or
	// ClusterGoogleOAuthClient.
	// +kubebuilder:validation:Enum=GoogleOAuthClient;ClusterGoogleOAuthClient
	// +kubebuilder:default=GoogleOAuthClient
	// +optional
	Kind string `json:"kind,omitempty"`

	// Name of the client object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ClientRefKind is spec.clientRef.kind, defaulted; "" when the grant has no clientRef.
func (g *GoogleOAuthGrant) ClientRefKind() string {
	switch {
	case g.Spec.ClientRef == nil:
		return ""
	case g.Spec.ClientRef.Kind == "":
		return KindGoogleOAuthClient
	}
	return g.Spec.ClientRef.Kind
}

// SecretKey is where the client's Secret is: spec.secretRef's namespace, or the manager's
// own (managerNamespace) when it names none. The one place that default is applied.
func (c *ClusterGoogleOAuthClient) SecretKey(managerNamespace string) types.NamespacedName {
	ns := c.Spec.SecretRef.Namespace
	if ns == "" {
		ns = managerNamespace
	}
	return types.NamespacedName{Namespace: ns, Name: c.Spec.SecretRef.Name}
}

// SecretKey is where the client's Secret is: in the client's namespace.
func (c *GoogleOAuthClient) SecretKey() types.NamespacedName {
	return types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.SecretRef.Name}
}
