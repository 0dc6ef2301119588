package grantinputs

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// serviceAccountKey is spec.serviceAccountKeySecretRef: a service account's JSON key, whose
// signed assertion is exchanged for tokens. No refresh token, no OAuth client.
type serviceAccountKey struct {
	ref oauthv1alpha1.ServiceAccountKeySecretReference
	key string
}

func (f serviceAccountKey) Kind() string { return FormServiceAccountKey }

func (f serviceAccountKey) Secrets() []string { return []string{f.ref.Name} }

func (f serviceAccountKey) Shared() string { return "" }

func (f serviceAccountKey) RefreshToken() *TokenLocation { return nil }

func (f serviceAccountKey) ClientRef() *ClientRef { return nil }

// ClientLabel: there is no OAuth client (the label grantkeeper_grant_client_info has always
// given these grants).
func (f serviceAccountKey) ClientLabel() (kind, name string) { return "Secret", "" }

// read reads the key live like a refresh token: a replaced key is used at the next request.
func (f serviceAccountKey) read(ctx context.Context, r *Reader, ns string, _ *ClientObject, c *Credential) (*credentials.Problem, error) {
	key := types.NamespacedName{Namespace: ns, Name: f.ref.Name}
	s, err := r.readLiveSecret(ctx, key, c)
	if err != nil || s == nil {
		return SecretNotFound(key, "spec.serviceAccountKeySecretRef", "grant"), err
	}
	k, p := credentials.ParseServiceAccountKey(s.Name, s.Data, f.key)
	if p == nil {
		c.ServiceAccount = &k
	}
	return p, nil
}

func (f serviceAccountKey) readLive(context.Context, secretGetter, string) (Live, error) {
	return Live{}, nil
}
