package grantinputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// ClientObject is a client object of any kind (the Google client kinds, OAuthClient,
// ClusterOAuthClient), as the controllers need it.
type ClientObject struct {
	Obj  client.Object
	Kind string
	// ClientID is the OAuth client's id as the object's status reports it.
	ClientID string
	// Ready is its Ready condition when it describes the object's current generation, nil
	// when its controller has not looked at this spec yet.
	Ready *metav1.Condition
	// Secret is where the client's Secret is (SecretOf); Secret.Namespace is "" when a
	// cluster client names no namespace and the manager's own is unknown, Secret.Name ""
	// when it needs none (a public provider client).
	Secret types.NamespacedName
	// Cluster is which namespaces a cluster client admits; nil for a namespaced client.
	Cluster *plan.Admission
	// Provider is what a provider client (OAuthClient, ClusterOAuthClient) gives a token
	// request; nil for the Google client kinds.
	Provider *ProviderClient
}

// Field names the client's Secret reference in messages.
func (c *ClientObject) Field() string {
	field := "spec.secretRef"
	if c.Provider != nil {
		field = c.Provider.field()
	}
	return fmt.Sprintf("%s of %s %q", field, c.Kind, c.Obj.GetName())
}

// GetClient reads a client object of kind (key's namespace is ignored for the cluster
// kinds); nil when it does not exist.
func GetClient(ctx context.Context, r client.Reader, kind string, key types.NamespacedName, managerNamespace string) (*ClientObject, error) {
	var obj client.Object
	switch kind {
	case oauthv1alpha1.KindClusterGoogleOAuthClient:
		obj = &oauthv1alpha1.ClusterGoogleOAuthClient{}
	case oauthv1alpha1.KindOAuthClient:
		obj = &oauthv1alpha1.OAuthClient{}
	case oauthv1alpha1.KindClusterOAuthClient:
		obj = &oauthv1alpha1.ClusterOAuthClient{}
	default:
		obj = &oauthv1alpha1.GoogleOAuthClient{}
	}
	if oauthv1alpha1.ClusterScopedClient(kind) {
		key.Namespace = ""
	}
	if err := r.Get(ctx, key, obj); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return ClientObjectOf(obj, managerNamespace), nil
}

// ClientObjectOf is a client object as the controllers need it.
func ClientObjectOf(obj client.Object, managerNamespace string) *ClientObject {
	c := &ClientObject{Obj: obj, Kind: KindOf(obj), Secret: SecretOf(obj, managerNamespace)}
	var st struct {
		observed   int64
		conditions []metav1.Condition
	}
	switch o := obj.(type) {
	case *oauthv1alpha1.GoogleOAuthClient:
		c.ClientID, st.observed, st.conditions = o.Status.ClientID, o.Status.ObservedGeneration, o.Status.Conditions
	case *oauthv1alpha1.ClusterGoogleOAuthClient:
		c.ClientID, st.observed, st.conditions = o.Status.ClientID, o.Status.ObservedGeneration, o.Status.Conditions
		c.Cluster = &plan.Admission{Namespaces: o.Spec.Namespaces, Selector: o.Spec.NamespaceSelector}
	case *oauthv1alpha1.OAuthClient:
		c.ClientID, st.observed, st.conditions = o.Status.ClientID, o.Status.ObservedGeneration, o.Status.Conditions
		c.Provider = providerClientOf(o.Spec.OAuthProvider, o.Status, o.Spec.ClientSecretRef, o.Spec.PrivateKeySecretRef)
	case *oauthv1alpha1.ClusterOAuthClient:
		c.ClientID, st.observed, st.conditions = o.Status.ClientID, o.Status.ObservedGeneration, o.Status.Conditions
		c.Cluster = &plan.Admission{Namespaces: o.Spec.Namespaces, Selector: o.Spec.NamespaceSelector}
		var cs *oauthv1alpha1.OAuthClientSecretReference
		if r := o.Spec.ClientSecretRef; r != nil {
			cs = &r.OAuthClientSecretReference
		}
		var pk *oauthv1alpha1.PrivateKeySecretReference
		if r := o.Spec.PrivateKeySecretRef; r != nil {
			pk = &r.PrivateKeySecretReference
		}
		c.Provider = providerClientOf(o.Spec.OAuthProvider, o.Status, cs, pk)
	}
	c.Ready = plan.ClientReady(obj.GetGeneration(), st.observed, st.conditions)
	return c
}

// SecretOf is where a client object's Secret is: a namespaced client's in its namespace, a
// cluster client's in its reference's namespace or else the manager's own
// (managerNamespace); for a provider client, the Secret its auth method reads (the signing
// key's for private_key_jwt, none for a public client). Every reader of a client's Secret
// (the grant, the client controllers, the index of client Secrets, the consent callback)
// asks here.
func SecretOf(o client.Object, managerNamespace string) types.NamespacedName {
	switch c := o.(type) {
	case *oauthv1alpha1.ClusterGoogleOAuthClient:
		return c.SecretKey(managerNamespace)
	case *oauthv1alpha1.GoogleOAuthClient:
		return c.SecretKey()
	case *oauthv1alpha1.OAuthClient:
		name := providerSecretName(c.Spec.OAuthProvider, c.Spec.ClientSecretRef, c.Spec.PrivateKeySecretRef)
		if name == "" {
			return types.NamespacedName{}
		}
		return types.NamespacedName{Namespace: c.Namespace, Name: name}
	case *oauthv1alpha1.ClusterOAuthClient:
		switch m := c.Spec.AuthMethod(); {
		case m == oauthv1alpha1.AuthPrivateKeyJWT && c.Spec.PrivateKeySecretRef != nil:
			return types.NamespacedName{Namespace: orDefault(c.Spec.PrivateKeySecretRef.Namespace, managerNamespace), Name: c.Spec.PrivateKeySecretRef.Name}
		case m != oauthv1alpha1.AuthNone && m != oauthv1alpha1.AuthPrivateKeyJWT && c.Spec.ClientSecretRef != nil:
			return types.NamespacedName{Namespace: orDefault(c.Spec.ClientSecretRef.Namespace, managerNamespace), Name: c.Spec.ClientSecretRef.Name}
		}
	}
	return types.NamespacedName{}
}

// KindOf is a client object's kind.
func KindOf(o client.Object) string {
	switch o.(type) {
	case *oauthv1alpha1.ClusterGoogleOAuthClient:
		return oauthv1alpha1.KindClusterGoogleOAuthClient
	case *oauthv1alpha1.OAuthClient:
		return oauthv1alpha1.KindOAuthClient
	case *oauthv1alpha1.ClusterOAuthClient:
		return oauthv1alpha1.KindClusterOAuthClient
	}
	return oauthv1alpha1.KindGoogleOAuthClient
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// SecretNotFound is the SecretNotFound problem for a Secret that field names; who is
// "grant" or "client", whichever picks the Secret up once created.
func SecretNotFound(key types.NamespacedName, field, who string) *credentials.Problem {
	return &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound,
		Message: fmt.Sprintf("Secret %q (%s) not found in namespace %q; create it, and the %s will pick it up within seconds", key.Name, field, key.Namespace, who)}
}

// clientFingerprint identifies a client object's spec and its Secret's version (UIDs,
// generations and resourceVersions only).
func clientFingerprint(co *ClientObject, secret *metav1.ObjectMeta) string {
	h := sha256.New()
	if co == nil {
		fmt.Fprint(h, "absent;")
	} else {
		fmt.Fprintf(h, "%s/%s=%s/%d;", co.Kind, co.Obj.GetName(), co.Obj.GetUID(), co.Obj.GetGeneration())
		if secret != nil {
			fmt.Fprintf(h, "%s/%s=%s/%s;", co.Secret.Namespace, co.Secret.Name, secret.UID, secret.ResourceVersion)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
