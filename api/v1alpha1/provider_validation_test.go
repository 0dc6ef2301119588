package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func validOAuthClient(name string) *oauthv1alpha1.OAuthClient {
	return &oauthv1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: oauthv1alpha1.OAuthClientSpec{
			OAuthProvider:   oauthv1alpha1.OAuthProvider{IssuerURL: "https://login.example.com/tenant", ClientID: "app-1"},
			ClientSecretRef: &oauthv1alpha1.OAuthClientSecretReference{Name: "app-1-secret"},
		},
	}
}

func validOAuthGrant(name string) *oauthv1alpha1.OAuthGrant {
	return &oauthv1alpha1.OAuthGrant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: oauthv1alpha1.OAuthGrantSpec{
			ClientRef:             oauthv1alpha1.OAuthClientReference{Name: "app-1"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "app-1-refresh-token"},
			Scopes:                []string{"offline_access", "files.read"},
		},
	}
}

// TestAPIServerStoresProviderKinds creates each new kind in its usual forms on the real API
// server and reads back the defaults.
func TestAPIServerStoresProviderKinds(t *testing.T) {
	ctx := context.Background()
	c := validOAuthClient("stored")
	if err := env.Client.Create(ctx, c); err != nil {
		t.Fatalf("creating a valid OAuthClient: %v", err)
	}
	if c.Spec.AuthMethod() != oauthv1alpha1.AuthClientSecretBasic || c.Spec.TokenEndpointAuthMethod != oauthv1alpha1.AuthClientSecretBasic {
		t.Errorf("tokenEndpointAuthMethod defaulted to %q, want client_secret_basic", c.Spec.TokenEndpointAuthMethod)
	}
	if c.Spec.ClientSecretRef.Key != "client_secret" {
		t.Errorf("clientSecretRef.key defaulted to %q, want client_secret", c.Spec.ClientSecretRef.Key)
	}
	for _, c := range []*oauthv1alpha1.OAuthClient{
		{ObjectMeta: metav1.ObjectMeta{Name: "jwt", Namespace: "default"}, Spec: oauthv1alpha1.OAuthClientSpec{
			OAuthProvider:       oauthv1alpha1.OAuthProvider{IssuerURL: "https://idp.example.com", ClientID: "jwt", TokenEndpointAuthMethod: oauthv1alpha1.AuthPrivateKeyJWT},
			PrivateKeySecretRef: &oauthv1alpha1.PrivateKeySecretReference{Name: "jwt-key", KeyID: "k1"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "public", Namespace: "default"}, Spec: oauthv1alpha1.OAuthClientSpec{
			OAuthProvider: oauthv1alpha1.OAuthProvider{ClientID: "cli", TokenEndpointAuthMethod: oauthv1alpha1.AuthNone,
				Endpoints: &oauthv1alpha1.OAuthEndpoints{TokenURL: "http://127.0.0.1:4444/oauth2/token", AuthorizationURL: "http://localhost:4444/oauth2/auth"}}}},
	} {
		if err := env.Client.Create(ctx, c); err != nil {
			t.Errorf("creating OAuthClient %s: %v", c.Name, err)
		}
	}
	if got := (&oauthv1alpha1.OAuthClient{}); env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "jwt"}, got) == nil && got.Spec.PrivateKeySecretRef.Key != "private_key.pem" {
		t.Errorf("privateKeySecretRef.key defaulted to %q, want private_key.pem", got.Spec.PrivateKeySecretRef.Key)
	}

	cc := &oauthv1alpha1.ClusterOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "stored"}, Spec: oauthv1alpha1.ClusterOAuthClientSpec{
		OAuthProvider:   oauthv1alpha1.OAuthProvider{IssuerURL: "https://idp.example.com", ClientID: "shared"},
		ClientSecretRef: &oauthv1alpha1.ClusterOAuthClientSecretReference{OAuthClientSecretReference: oauthv1alpha1.OAuthClientSecretReference{Name: "s"}, Namespace: "grantkeeper-system"},
		Namespaces:      []string{"team-a"},
	}}
	if err := env.Client.Create(ctx, cc); err != nil {
		t.Fatalf("creating a ClusterOAuthClient: %v", err)
	}
	if cc.Namespace != "" || cc.Spec.ClientSecretRef.Key != "client_secret" {
		t.Errorf("ClusterOAuthClient read back namespace %q, key %q", cc.Namespace, cc.Spec.ClientSecretRef.Key)
	}

	g := validOAuthGrant("stored")
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatalf("creating a valid OAuthGrant: %v", err)
	}
	if g.Type() != oauthv1alpha1.GrantTypeRefreshToken || g.Spec.GrantType != oauthv1alpha1.GrantTypeRefreshToken || g.ClientRefKind() != oauthv1alpha1.KindOAuthClient ||
		g.Spec.ClientRef.Kind != oauthv1alpha1.KindOAuthClient || g.Spec.DeletionPolicy != oauthv1alpha1.DeletionPolicyRetain || g.RefreshTokenKey() != "refresh_token" ||
		g.TargetSecretName() != "stored-access-token" {
		t.Errorf("OAuthGrant defaults: %+v", g.Spec)
	}
	m2m := &oauthv1alpha1.OAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "m2m", Namespace: "default"}, Spec: oauthv1alpha1.OAuthGrantSpec{
		ClientRef: oauthv1alpha1.OAuthClientReference{Kind: oauthv1alpha1.KindClusterOAuthClient, Name: "stored"}, GrantType: oauthv1alpha1.GrantTypeClientCredentials,
		Scopes: []string{"api.read"}, Resources: []string{"https://api.example.com/"}, Audience: "https://api.example.com"}}
	if err := env.Client.Create(ctx, m2m); err != nil {
		t.Fatalf("creating a client-credentials OAuthGrant: %v", err)
	}
}

// TestAPIServerRejectsInvalidProviderKinds: the CRDs' schema and CEL rules refuse the
// mistakes a user can make in the new kinds, naming the field.
func TestAPIServerRejectsInvalidProviderKinds(t *testing.T) {
	clientCases := []struct {
		name   string
		mutate func(*oauthv1alpha1.OAuthClientSpec)
		want   string
	}{
		{"neither issuer nor token URL", func(s *oauthv1alpha1.OAuthClientSpec) { s.IssuerURL = "" }, "set spec.issuerURL"},
		{"endpoints without a token URL", func(s *oauthv1alpha1.OAuthClientSpec) {
			s.IssuerURL, s.Endpoints = "", &oauthv1alpha1.OAuthEndpoints{AuthorizationURL: "https://idp.example.com/auth"}
		}, "set spec.issuerURL"},
		{"http issuer", func(s *oauthv1alpha1.OAuthClientSpec) { s.IssuerURL = "http://idp.example.com" }, "must be an https URL"},
		{"http issuer to a name that starts like loopback", func(s *oauthv1alpha1.OAuthClientSpec) { s.IssuerURL = "http://localhost.example.com" }, "must be an https URL"},
		{"issuer not a URL", func(s *oauthv1alpha1.OAuthClientSpec) { s.IssuerURL = "idp.example.com" }, "must be an https URL"},
		{"issuer with a query", func(s *oauthv1alpha1.OAuthClientSpec) { s.IssuerURL = "https://idp.example.com/?tenant=a" }, "no query or fragment"},
		{"http token URL", func(s *oauthv1alpha1.OAuthClientSpec) {
			s.Endpoints = &oauthv1alpha1.OAuthEndpoints{TokenURL: "http://10.0.0.1/token"}
		}, "spec.endpoints.tokenURL"},
		{"ftp revocation URL", func(s *oauthv1alpha1.OAuthClientSpec) {
			s.Endpoints = &oauthv1alpha1.OAuthEndpoints{RevocationURL: "ftp://idp.example.com/revoke"}
		}, "spec.endpoints.revocationURL"},
		{"no client id", func(s *oauthv1alpha1.OAuthClientSpec) { s.ClientID = "" }, "spec.clientID"},
		{"unknown auth method", func(s *oauthv1alpha1.OAuthClientSpec) { s.TokenEndpointAuthMethod = "tls_client_auth" }, "spec.tokenEndpointAuthMethod"},
		{"basic without a secret", func(s *oauthv1alpha1.OAuthClientSpec) { s.ClientSecretRef = nil }, "spec.clientSecretRef is required"},
		{"post without a secret", func(s *oauthv1alpha1.OAuthClientSpec) {
			s.TokenEndpointAuthMethod, s.ClientSecretRef = oauthv1alpha1.AuthClientSecretPost, nil
		}, "spec.clientSecretRef is required"},
		{"none with a secret", func(s *oauthv1alpha1.OAuthClientSpec) { s.TokenEndpointAuthMethod = oauthv1alpha1.AuthNone }, "not allowed with private_key_jwt or none"},
		{"private_key_jwt without a key", func(s *oauthv1alpha1.OAuthClientSpec) {
			s.TokenEndpointAuthMethod, s.ClientSecretRef = oauthv1alpha1.AuthPrivateKeyJWT, nil
		}, "spec.privateKeySecretRef is required"},
		{"a key with client_secret_basic", func(s *oauthv1alpha1.OAuthClientSpec) {
			s.PrivateKeySecretRef = &oauthv1alpha1.PrivateKeySecretReference{Name: "k"}
		}, "spec.privateKeySecretRef is required with tokenEndpointAuthMethod private_key_jwt, and not allowed otherwise"},
		{"secret key with a slash", func(s *oauthv1alpha1.OAuthClientSpec) { s.ClientSecretRef.Key = "a/b" }, "spec.clientSecretRef.key"},
	}
	for _, tc := range clientCases {
		t.Run("OAuthClient/"+tc.name, func(t *testing.T) {
			c := validOAuthClient("invalid")
			tc.mutate(&c.Spec)
			rejected(t, c, tc.want)
		})
		t.Run("ClusterOAuthClient/"+tc.name, func(t *testing.T) {
			v := validOAuthClient("")
			tc.mutate(&v.Spec)
			c := &oauthv1alpha1.ClusterOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "invalid"}, Spec: oauthv1alpha1.ClusterOAuthClientSpec{OAuthProvider: v.Spec.OAuthProvider}}
			if v.Spec.ClientSecretRef != nil {
				c.Spec.ClientSecretRef = &oauthv1alpha1.ClusterOAuthClientSecretReference{OAuthClientSecretReference: *v.Spec.ClientSecretRef}
			}
			if v.Spec.PrivateKeySecretRef != nil {
				c.Spec.PrivateKeySecretRef = &oauthv1alpha1.ClusterPrivateKeySecretReference{PrivateKeySecretReference: *v.Spec.PrivateKeySecretRef}
			}
			rejected(t, c, tc.want)
		})
	}
	t.Run("ClusterOAuthClient/a selector operator the controller cannot evaluate", func(t *testing.T) {
		v := validOAuthClient("")
		c := &oauthv1alpha1.ClusterOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "invalid"}, Spec: oauthv1alpha1.ClusterOAuthClientSpec{
			OAuthProvider: v.Spec.OAuthProvider, ClientSecretRef: &oauthv1alpha1.ClusterOAuthClientSecretReference{OAuthClientSecretReference: *v.Spec.ClientSecretRef},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Gt", Values: []string{"1"}}}}}}
		rejected(t, c, "matchExpressions operators")
	})

	for _, tc := range []struct {
		name   string
		mutate func(*oauthv1alpha1.OAuthGrantSpec)
		want   string
	}{
		{"no client name", func(s *oauthv1alpha1.OAuthGrantSpec) { s.ClientRef.Name = "" }, "spec.clientRef.name"},
		{"a Google client kind", func(s *oauthv1alpha1.OAuthGrantSpec) { s.ClientRef.Kind = oauthv1alpha1.KindGoogleOAuthClient }, "spec.clientRef.kind"},
		{"refresh token grant without a refresh token", func(s *oauthv1alpha1.OAuthGrantSpec) { s.RefreshTokenSecretRef = nil }, "spec.refreshTokenSecretRef is required"},
		{"client credentials with a refresh token", func(s *oauthv1alpha1.OAuthGrantSpec) { s.GrantType = oauthv1alpha1.GrantTypeClientCredentials }, "not allowed with ClientCredentials"},
		{"client credentials with a login hint", func(s *oauthv1alpha1.OAuthGrantSpec) {
			s.GrantType, s.RefreshTokenSecretRef, s.LoginHint = oauthv1alpha1.GrantTypeClientCredentials, nil, "me@example.com"
		}, "spec.loginHint is for consent links"},
		{"client credentials with Revoke", func(s *oauthv1alpha1.OAuthGrantSpec) {
			s.GrantType, s.RefreshTokenSecretRef, s.DeletionPolicy = oauthv1alpha1.GrantTypeClientCredentials, nil, oauthv1alpha1.DeletionPolicyRevoke
		}, "there is no refresh token to revoke"},
		{"unknown grant type", func(s *oauthv1alpha1.OAuthGrantSpec) { s.GrantType = "Password" }, "spec.grantType"},
		{"scope with a space", func(s *oauthv1alpha1.OAuthGrantSpec) { s.Scopes = []string{"read write"} }, "spec.scopes"},
		{"scope with a quote", func(s *oauthv1alpha1.OAuthGrantSpec) { s.Scopes = []string{`a"b`} }, "spec.scopes"},
		{"relative resource", func(s *oauthv1alpha1.OAuthGrantSpec) { s.Resources = []string{"/api"} }, "a resource indicator is an absolute URI"},
		{"resource with a fragment", func(s *oauthv1alpha1.OAuthGrantSpec) { s.Resources = []string{"https://api.example.com/#x"} }, "a resource indicator is an absolute URI"},
		{"zero refreshBefore", func(s *oauthv1alpha1.OAuthGrantSpec) { s.RefreshBefore = &metav1.Duration{} }, "refreshBefore must be a positive duration"},
		{"accessTokenSecretName not a Secret name", func(s *oauthv1alpha1.OAuthGrantSpec) { s.AccessTokenSecretName = "Not_A_Name" }, "spec.accessTokenSecretName"},
		{"unknown deletionPolicy", func(s *oauthv1alpha1.OAuthGrantSpec) { s.DeletionPolicy = "Delete" }, "spec.deletionPolicy"},
	} {
		t.Run("OAuthGrant/"+tc.name, func(t *testing.T) {
			g := validOAuthGrant("invalid")
			tc.mutate(&g.Spec)
			rejected(t, g, tc.want)
		})
	}
}

func rejected(t *testing.T, obj client.Object, want string) {
	t.Helper()
	err := env.Client.Create(context.Background(), obj)
	if err == nil {
		_ = env.Client.Delete(context.Background(), obj)
		t.Fatalf("the API server accepted an invalid %T", obj)
	}
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("want an Invalid error mentioning %q, got: %v", want, err)
	}
}
