package v1alpha1_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

func validGrant(name string) *oauthv1alpha1.GoogleOAuthGrant {
	return &oauthv1alpha1.GoogleOAuthGrant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
			ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "google-oauth-client"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "analytics-refresh-token"},
			Scopes:                []string{"https://www.googleapis.com/auth/analytics.readonly"},
			RefreshBefore:         &metav1.Duration{Duration: 15 * time.Minute},
		},
	}
}

// TestAPIServerStoresAGrant creates a GoogleOAuthGrant on the real API server and reads it
// back with the CRD's defaults applied.
func TestAPIServerStoresAGrant(t *testing.T) {
	ctx := context.Background()
	g := validGrant("analytics")
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatalf("creating a valid grant: %v", err)
	}
	got := &oauthv1alpha1.GoogleOAuthGrant{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(g), got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.RefreshTokenSecretRef.Key != "refresh_token" {
		t.Errorf("refreshTokenSecretRef.key defaulted to %q, want refresh_token", got.Spec.RefreshTokenSecretRef.Key)
	}
	if got.Spec.DeletionPolicy != oauthv1alpha1.DeletionPolicyRetain {
		t.Errorf("deletionPolicy defaulted to %q, want Retain", got.Spec.DeletionPolicy)
	}
	if got.Spec.RefreshBefore.Duration != 15*time.Minute || got.TargetSecretName() != "analytics-access-token" {
		t.Errorf("read back %+v", got.Spec)
	}
	adc := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "adc", Namespace: "default"},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{AuthorizedUserSecretRef: &oauthv1alpha1.AuthorizedUserSecretReference{Name: "gcloud-adc"}}}
	if err := env.Client.Create(ctx, adc); err != nil {
		t.Fatalf("creating a grant in the authorized-user form: %v", err)
	}
	if adc.Spec.AuthorizedUserSecretRef.Key != "credentials.json" {
		t.Errorf("authorizedUserSecretRef.key defaulted to %q", adc.Spec.AuthorizedUserSecretRef.Key)
	}
	t.Logf("API server stored GoogleOAuthGrant %s/%s (uid %s) and returned it with defaults", got.Namespace, got.Name, got.UID)
}

// TestAPIServerRejectsInvalidGrants: CRD schema rules (OpenAPI and CEL) refuse bad specs at apply time.
func TestAPIServerRejectsInvalidGrants(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*oauthv1alpha1.GoogleOAuthGrant)
		want   string
	}{
		{"empty clientSecretRef name", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.ClientSecretRef.Name = "" }, "spec.clientSecretRef.name"},
		{"empty refreshTokenSecretRef name", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.RefreshTokenSecretRef.Name = "" }, "spec.refreshTokenSecretRef.name"},
		{"zero refreshBefore", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.RefreshBefore = &metav1.Duration{} }, "refreshBefore must be a positive duration"},
		{"negative refreshBefore", func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Spec.RefreshBefore = &metav1.Duration{Duration: -time.Minute}
		}, "refreshBefore must be a positive duration"},
		{"unknown deletionPolicy", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.DeletionPolicy = "Delete" }, "spec.deletionPolicy"},
		{"accessTokenSecretName not a Secret name", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.AccessTokenSecretName = "Not_A_Name" }, "spec.accessTokenSecretName"},
		{"empty scope", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.Scopes = []string{""} }, "spec.scopes"},
		{"no refresh token reference", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.RefreshTokenSecretRef = nil }, "spec.refreshTokenSecretRef is required"},
		{"no client reference", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.ClientSecretRef = nil }, "set exactly one of spec.clientSecretRef, spec.clientRef and spec.authorizedUserSecretRef"},
		{"clientRef and clientSecretRef", func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Spec.ClientRef = &oauthv1alpha1.ClientReference{Name: "shared"}
		}, "set exactly one of spec.clientSecretRef, spec.clientRef and spec.authorizedUserSecretRef"},
		{"clientRef with an unknown kind", func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Spec.ClientSecretRef, g.Spec.ClientRef = nil, &oauthv1alpha1.ClientReference{Kind: "Issuer", Name: "shared"}
		}, "spec.clientRef.kind"},
		{"clientRef with an empty name", func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Spec.ClientSecretRef, g.Spec.ClientRef = nil, &oauthv1alpha1.ClientReference{}
		}, "spec.clientRef.name"},
		{"clientRef with authorizedUserSecretRef", func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Spec.ClientSecretRef, g.Spec.RefreshTokenSecretRef = nil, nil
			g.Spec.ClientRef = &oauthv1alpha1.ClientReference{Name: "shared"}
			g.Spec.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: "adc"}
		}, "set exactly one of spec.clientSecretRef, spec.clientRef and spec.authorizedUserSecretRef"},
		{"both credential forms", func(g *oauthv1alpha1.GoogleOAuthGrant) {
			g.Spec.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: "adc"}
		}, "not both"},
		{"refresh token key with a slash", func(g *oauthv1alpha1.GoogleOAuthGrant) { g.Spec.RefreshTokenSecretRef.Key = "a/b" }, "spec.refreshTokenSecretRef.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := validGrant("invalid")
			tc.mutate(g)
			err := env.Client.Create(context.Background(), g)
			if err == nil {
				_ = env.Client.Delete(context.Background(), g)
				t.Fatal("the API server accepted an invalid grant")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an Invalid error mentioning %q, got: %v", tc.want, err)
			}
			t.Logf("API server rejected it: %v", err)
		})
	}
}

// TestStatusIsASubresource: users (and kubectl apply) cannot set a grant's status through
// the main resource, and the controller's status writes cannot change its spec: the CRD
// serves status as a subresource.
func TestStatusIsASubresource(t *testing.T) {
	ctx := context.Background()
	g := validGrant("status-sub")
	g.Status.AccessTokenSecretName = "set-on-create"
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	got := &oauthv1alpha1.GoogleOAuthGrant{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(g), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.AccessTokenSecretName != "" {
		t.Errorf("status set through create: %+v", got.Status)
	}

	got.Status.AccessTokenSecretName = "set-on-update"
	if err := env.Client.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(g), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.AccessTokenSecretName != "" {
		t.Errorf("status set through an update of the main resource: %+v", got.Status)
	}

	got.Status.AccessTokenSecretName = "status-sub-access-token"
	got.Spec.AccessTokenSecretName = "changed-through-status"
	if err := env.Client.Status().Update(ctx, got); err != nil {
		t.Fatalf("status update: %v", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(g), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.AccessTokenSecretName != "status-sub-access-token" || got.Spec.AccessTokenSecretName != "" {
		t.Errorf("after a status update: spec.accessTokenSecretName %q, status.accessTokenSecretName %q", got.Spec.AccessTokenSecretName, got.Status.AccessTokenSecretName)
	}
}

// TestAPIServerStoresClients: both client kinds and a grant naming one are accepted, with
// defaults, and bad client manifests are refused naming the field.
func TestAPIServerStoresClients(t *testing.T) {
	ctx := context.Background()
	g := validGrant("with-client-ref")
	g.Spec.ClientSecretRef, g.Spec.ClientRef = nil, &oauthv1alpha1.ClientReference{Name: "shared"}
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatalf("creating a grant with clientRef: %v", err)
	}
	if g.Spec.ClientRef.Kind != oauthv1alpha1.KindGoogleOAuthClient {
		t.Errorf("clientRef.kind defaulted to %q, want GoogleOAuthClient", g.Spec.ClientRef.Kind)
	}
	goc := &oauthv1alpha1.GoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "default"},
		Spec: oauthv1alpha1.GoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClientObjectSecretReference{Name: "google-oauth-client"}}}
	if err := env.Client.Create(ctx, goc); err != nil {
		t.Fatalf("creating a GoogleOAuthClient: %v", err)
	}
	cgoc := &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: oauthv1alpha1.ClusterGoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClusterClientSecretReference{Name: "google-oauth-client"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "analytics"}}, Namespaces: []string{"default"}}}
	if err := env.Client.Create(ctx, cgoc); err != nil {
		t.Fatalf("creating a ClusterGoogleOAuthClient: %v", err)
	}
	if cgoc.Namespace != "" || cgoc.UID == "" {
		t.Errorf("ClusterGoogleOAuthClient stored as %q/%q", cgoc.Namespace, cgoc.Name)
	}

	for _, tc := range []struct {
		name string
		obj  client.Object
		want string
	}{
		{"client without a Secret name", &oauthv1alpha1.GoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "default"}}, "spec.secretRef.name"},
		{"cluster client without a Secret name", &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "bad"}}, "spec.secretRef.name"},
		{"cluster client with a bad Secret namespace", &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
			Spec: oauthv1alpha1.ClusterGoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClusterClientSecretReference{Name: "s", Namespace: "Not_A_Namespace"}}}, "spec.secretRef.namespace"},
		{"cluster client with an empty namespace name", &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
			Spec: oauthv1alpha1.ClusterGoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClusterClientSecretReference{Name: "s"}, Namespaces: []string{""}}}, "spec.namespaces"},
		{"cluster client with a bad selector operator", &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
			Spec: oauthv1alpha1.ClusterGoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClusterClientSecretReference{Name: "s"},
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Matches"}}}}}, "spec.namespaceSelector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(ctx, tc.obj)
			if err == nil {
				_ = env.Client.Delete(ctx, tc.obj)
				t.Fatal("the API server accepted an invalid client")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an Invalid error mentioning %q, got: %v", tc.want, err)
			}
			t.Logf("API server rejected it: %v", err)
		})
	}
}
