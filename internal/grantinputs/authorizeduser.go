package grantinputs

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// authorizedUser is spec.authorizedUserSecretRef: one key holding the JSON `gcloud auth
// application-default login` writes, with the client and the refresh token in it. Read live
// at each token request (the record keeps only tokens that are a key's whole value).
type authorizedUser struct {
	secret, key string
}

func (f authorizedUser) Kind() string { return FormAuthorizedUser }

func (f authorizedUser) Secrets() []string { return []string{f.secret} }

func (f authorizedUser) Shared() string { return "" }

func (f authorizedUser) RefreshToken() *TokenLocation {
	return &TokenLocation{Secret: f.secret, Key: f.key,
		get: func(data map[string][]byte) (string, *credentials.Problem) {
			_, rt, p := credentials.ParseAuthorizedUser(f.secret, data, f.key)
			return rt, p
		},
		put: credentials.ReplaceAuthorizedUserRefreshToken,
	}
}

func (f authorizedUser) ClientRef() *ClientRef { return nil }

func (f authorizedUser) ClientLabel() (kind, name string) { return FormAuthorizedUser, f.secret }

func (f authorizedUser) read(ctx context.Context, r *Reader, ns string, _ *ClientObject, c *Credential) (*credentials.Problem, error) {
	key := types.NamespacedName{Namespace: ns, Name: f.secret}
	s, err := r.readLiveSecret(ctx, key, c)
	if err != nil || s == nil {
		return SecretNotFound(key, "spec.authorizedUserSecretRef", "grant"), err
	}
	c.refreshSecret = s
	cl, rt, p := credentials.ParseAuthorizedUser(s.Name, s.Data, f.key)
	c.Client, c.RefreshToken = cl, rt
	return p, nil
}

func (f authorizedUser) readLive(ctx context.Context, live secretGetter, ns string) (Live, error) {
	l := Live{Secret: f.secret}
	s, err := liveSecret(ctx, live, types.NamespacedName{Namespace: ns, Name: f.secret})
	if err != nil || s == nil {
		return l, err
	}
	l.Found = true
	if cl, rt, p := credentials.ParseAuthorizedUser(f.secret, s.Data, f.key); p == nil {
		l.RefreshToken, l.ClientID = rt, cl.ID
	}
	return l, nil
}
