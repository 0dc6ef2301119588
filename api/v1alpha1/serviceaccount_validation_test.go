package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func serviceAccountGrant(name string) *oauthv1alpha1.GoogleOAuthGrant {
	return &oauthv1alpha1.GoogleOAuthGrant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
			ServiceAccountKeySecretRef: &oauthv1alpha1.ServiceAccountKeySecretReference{Name: "analytics-sa-key"},
			Scopes:                     []string{"https://www.googleapis.com/auth/analytics.readonly"},
		},
	}
}

// TestAPIServerStoresServiceAccountGrants: the service-account form, with and without
// delegation, is accepted and its key defaulted.
func TestAPIServerStoresServiceAccountGrants(t *testing.T) {
	ctx := context.Background()
	own := serviceAccountGrant("sa-own")
	if err := env.Client.Create(ctx, own); err != nil {
		t.Fatalf("creating a service-account grant: %v", err)
	}
	if own.Spec.ServiceAccountKeySecretRef.Key != "credentials.json" {
		t.Errorf("serviceAccountKeySecretRef.key defaulted to %q, want credentials.json", own.Spec.ServiceAccountKeySecretRef.Key)
	}
	delegated := serviceAccountGrant("sa-delegated")
	delegated.Spec.Subject = "analyst@example.com"
	delegated.Spec.DeletionPolicy = oauthv1alpha1.DeletionPolicyRetain
	if err := env.Client.Create(ctx, delegated); err != nil {
		t.Fatalf("creating a delegated service-account grant: %v", err)
	}
}

// TestAPIServerRejectsInvalidServiceAccountGrants: each rule names the fields involved.
func TestAPIServerRejectsInvalidServiceAccountGrants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grant func() *oauthv1alpha1.GoogleOAuthGrant
		want  string
	}{
		{"with a refresh-token Secret", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := serviceAccountGrant("invalid-sa")
			g.Spec.RefreshTokenSecretRef = &oauthv1alpha1.RefreshTokenSecretReference{Name: "rt"}
			return g
		}, "spec.serviceAccountKeySecretRef is a credential source of its own"},
		{"with a client Secret", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := serviceAccountGrant("invalid-sa")
			g.Spec.ClientSecretRef = &oauthv1alpha1.ClientSecretReference{Name: "client"}
			return g
		}, "spec.serviceAccountKeySecretRef is a credential source of its own"},
		{"with an authorized-user Secret", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := serviceAccountGrant("invalid-sa")
			g.Spec.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: "adc"}
			return g
		}, "spec.serviceAccountKeySecretRef is a credential source of its own"},
		{"without scopes", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := serviceAccountGrant("invalid-sa")
			g.Spec.Scopes = nil
			return g
		}, "spec.scopes is required with spec.serviceAccountKeySecretRef"},
		{"deletionPolicy Revoke", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := serviceAccountGrant("invalid-sa")
			g.Spec.DeletionPolicy = oauthv1alpha1.DeletionPolicyRevoke
			return g
		}, "spec.deletionPolicy Revoke is not allowed with spec.serviceAccountKeySecretRef"},
		{"subject on a user grant", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := validGrant("invalid-sa")
			g.Spec.Subject = "analyst@example.com"
			return g
		}, "spec.subject is only allowed with spec.serviceAccountKeySecretRef"},
		{"subject not an email address", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := serviceAccountGrant("invalid-sa")
			g.Spec.Subject = "analyst"
			return g
		}, "spec.subject"},
		{"empty key Secret name", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := serviceAccountGrant("invalid-sa")
			g.Spec.ServiceAccountKeySecretRef.Name = ""
			return g
		}, "spec.serviceAccountKeySecretRef.name"},
		{"no credential source", func() *oauthv1alpha1.GoogleOAuthGrant {
			g := serviceAccountGrant("invalid-sa")
			g.Spec.ServiceAccountKeySecretRef = nil
			return g
		}, "spec.refreshTokenSecretRef is required (or use spec.authorizedUserSecretRef or spec.serviceAccountKeySecretRef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.grant()
			err := env.Client.Create(context.Background(), g)
			if err == nil {
				_ = env.Client.Delete(context.Background(), g)
				t.Fatal("the API server accepted an invalid grant")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an Invalid error mentioning %q, got: %v", tc.want, err)
			}
		})
	}
}
