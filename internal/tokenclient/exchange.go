package tokenclient

import (
	"context"
	"errors"
	"time"

	"golang.org/x/oauth2"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// Exchange trades an authorization code (with its PKCE verifier) for tokens, server side:
// the client secret never leaves the cluster. The result carries the new refresh token and
// the ID token.
func (e *Endpoint) Exchange(ctx context.Context, client credentials.Client, code, redirectURI, verifier string, now time.Time) (*Token, error) {
	conf := &oauth2.Config{
		ClientID: client.ID, ClientSecret: client.Secret, RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{TokenURL: e.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, e.HTTP)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, err
	}
	t, err := validate(tok, "", now)
	if err != nil {
		return nil, err
	}
	if t.RefreshToken == "" {
		return nil, errors.New("the token endpoint returned no refresh token (access_type=offline and prompt=consent were sent)")
	}
	return t, nil
}
