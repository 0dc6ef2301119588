package grantinputs

import (
	"context"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// clientCredentials is an OAuthGrant's grantType ClientCredentials (RFC 6749 section 4.4):
// the client's own token. No Secrets of its own, no refresh token (so no write-back,
// consent or revocation of one); the client object's Secret holds the client's secret or key.
type clientCredentials struct {
	client *ClientRef
}

func (f clientCredentials) Kind() string { return FormClientCredentials }

func (f clientCredentials) Secrets() []string { return nil }

func (f clientCredentials) Shared() string { return "" }

func (f clientCredentials) RefreshToken() *TokenLocation { return nil }

func (f clientCredentials) ClientRef() *ClientRef { return f.client }

func (f clientCredentials) ClientLabel() (kind, name string) { return f.client.Kind, f.client.Name }

func (f clientCredentials) read(ctx context.Context, r *Reader, _ string, co *ClientObject, c *Credential) (*credentials.Problem, error) {
	if co == nil || co.Provider == nil {
		// Decide reports an absent or unusable client before any request; this is a guard.
		return &credentials.Problem{Reason: oauthv1alpha1.ReasonClientNotReady, Message: "the client object spec.clientRef names is not usable"}, nil
	}
	return r.readProviderClient(ctx, co, f.client.params, true, c)
}

func (f clientCredentials) readLive(context.Context, secretGetter, string) (Live, error) {
	return Live{}, nil
}
