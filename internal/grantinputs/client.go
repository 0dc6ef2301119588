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
)

// ClientObject is either OAuth client kind, as the controllers need it.
type ClientObject struct {
	Obj    client.Object
	Kind   string
	Status *oauthv1alpha1.GoogleOAuthClientStatus
	// Secret is where the client's Secret is (SecretOf); Secret.Namespace is "" when a
	// cluster client names no namespace and the manager's own is unknown.
	Secret types.NamespacedName
	// Cluster is a cluster client's spec, for its namespace conditions; nil otherwise.
	Cluster *oauthv1alpha1.ClusterGoogleOAuthClientSpec
}

// Field names the client's Secret reference in messages.
func (c *ClientObject) Field() string {
	return fmt.Sprintf("spec.secretRef of %s %q", c.Kind, c.Obj.GetName())
}

// GetClient reads a client object of kind (KindGoogleOAuthClient or
// KindClusterGoogleOAuthClient; key's namespace is ignored for the latter); nil when it does
// not exist.
func GetClient(ctx context.Context, r client.Reader, kind string, key types.NamespacedName, managerNamespace string) (*ClientObject, error) {
	var c *ClientObject
	switch kind {
	case oauthv1alpha1.KindClusterGoogleOAuthClient:
		o := &oauthv1alpha1.ClusterGoogleOAuthClient{}
		c = &ClientObject{Obj: o, Kind: kind, Status: &o.Status, Cluster: &o.Spec}
		key.Namespace = ""
	default:
		o := &oauthv1alpha1.GoogleOAuthClient{}
		c = &ClientObject{Obj: o, Kind: oauthv1alpha1.KindGoogleOAuthClient, Status: &o.Status}
	}
	if err := r.Get(ctx, key, c.Obj); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	c.Secret = SecretOf(c.Obj, managerNamespace)
	return c, nil
}

// SecretOf is where a client object's Secret is: a GoogleOAuthClient's in its namespace, a
// ClusterGoogleOAuthClient's in spec.secretRef's namespace or else the manager's own
// (managerNamespace). Every reader of a client's Secret (the grant, the client controller,
// the index of client Secrets, the consent callback) asks here.
func SecretOf(o client.Object, managerNamespace string) types.NamespacedName {
	switch c := o.(type) {
	case *oauthv1alpha1.ClusterGoogleOAuthClient:
		return c.SecretKey(managerNamespace)
	case *oauthv1alpha1.GoogleOAuthClient:
		return c.SecretKey()
	}
	return types.NamespacedName{}
}

// KindOf is a client object's kind.
func KindOf(o client.Object) string {
	if _, ok := o.(*oauthv1alpha1.ClusterGoogleOAuthClient); ok {
		return oauthv1alpha1.KindClusterGoogleOAuthClient
	}
	return oauthv1alpha1.KindGoogleOAuthClient
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
