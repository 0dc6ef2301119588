package main

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// clientName is the client object (OAuthClient) and the client Secret every bench grant of a
// namespace uses.
const clientName = "client"

// grantKind is the kind of grant a run creates (BENCH_KIND): GoogleOAuthGrant (Google's
// token endpoint, the manager's --token-url) or OAuthGrant (any provider: an OAuthClient
// whose endpoints are the same fake Google, reached through internal/oauthtoken).
type grantKind string

const (
	kindGoogle   grantKind = oauthv1alpha1.KindGoogleOAuthGrant
	kindProvider grantKind = oauthv1alpha1.KindOAuthGrant
)

// parseKind reads BENCH_KIND; empty is GoogleOAuthGrant.
func parseKind(s string) (grantKind, error) {
	switch strings.TrimSpace(s) {
	case "", string(kindGoogle):
		return kindGoogle, nil
	case string(kindProvider):
		return kindProvider, nil
	}
	return "", fmt.Errorf("BENCH_KIND: %q is not GoogleOAuthGrant or OAuthGrant", s)
}

// resource is the kind's plural resource name (for the dynamic client and kubectl).
func (k grantKind) resource() string {
	if k == kindProvider {
		return "oauthgrants"
	}
	return "googleoauthgrants"
}

// empty is an empty object of the kind, for Get and informers.
func (k grantKind) empty() oauthv1alpha1.Grant {
	if k == kindProvider {
		return &oauthv1alpha1.OAuthGrant{}
	}
	return &oauthv1alpha1.GoogleOAuthGrant{}
}

// grant is the bench's grant name in namespace: a user's grant whose refresh token is in
// the Secret <name>-rt, for the namespace's client (clientObjects), with no scopes set (a
// token carries what its refresh token was granted).
func (k grantKind) grant(namespace, name string) oauthv1alpha1.Grant {
	om := metav1.ObjectMeta{Name: name, Namespace: namespace}
	rt := &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-rt"}
	if k == kindProvider {
		return &oauthv1alpha1.OAuthGrant{ObjectMeta: om, Spec: oauthv1alpha1.OAuthGrantSpec{
			ClientRef: oauthv1alpha1.OAuthClientReference{Name: clientName}, RefreshTokenSecretRef: rt}}
	}
	return &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: om, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: clientName}, RefreshTokenSecretRef: rt}}
}

// clientObjects are what a namespace's grants need besides their refresh tokens, in the order
// to create them: the client Secret (client_id and client_secret, as a Google grant's
// clientSecretRef reads it) and, for OAuthGrants, an OAuthClient whose token and revocation
// endpoints are the fake Google's, authenticating as client_secret_post (what the fake takes).
func (k grantKind) clientObjects(namespace, tokenURL, revokeURL string) []client.Object {
	objs := []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: clientName, Namespace: namespace},
		StringData: map[string]string{"client_id": clientID, "client_secret": clientSecret}}}
	if k == kindProvider {
		objs = append(objs, &oauthv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: clientName, Namespace: namespace},
			Spec: oauthv1alpha1.OAuthClientSpec{
				OAuthProvider: oauthv1alpha1.OAuthProvider{ClientID: clientID, TokenEndpointAuthMethod: oauthv1alpha1.AuthClientSecretPost,
					Endpoints: &oauthv1alpha1.OAuthEndpoints{TokenURL: tokenURL, RevocationURL: revokeURL}},
				ClientSecretRef: &oauthv1alpha1.OAuthClientSecretReference{Name: clientName},
			}})
	}
	return objs
}

// managerArgs are the manager flags the kind needs: the fake's endpoints are on loopback,
// which the manager refuses for OAuthClients unless told (internal/egress).
func (k grantKind) managerArgs() []string {
	if k == kindProvider {
		return []string{"--allow-loopback-providers"}
	}
	return nil
}
