// Package grantinputs is the one home of a grant's credentials: which form they take (one
// file each: refreshtoken.go, authorizeduser.go, serviceaccountkey.go), which OAuth client
// (client.go: the Secret, a GoogleOAuthClient or a ClusterGoogleOAuthClient, whose Secret's
// namespace is computed in one place), which Secrets the grant reads and their fingerprint
// (resolve.go: from an interface over the caches), and how a token request's credential is
// read at act time and a rotated refresh token written back (read.go, with the records of
// refresh tokens and clients by Secret version, records.go).
//
// The rest of the operator asks a Form; it never branches on which spec field is set.
package grantinputs

import (
	"context"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/oauthtoken"
)

// The forms' names (Form.Kind).
const (
	FormRefreshToken      = "RefreshToken"
	FormAuthorizedUser    = "AuthorizedUser"
	FormServiceAccountKey = "ServiceAccountKey"
	// FormClientCredentials is an OAuthGrant's grantType ClientCredentials.
	FormClientCredentials = "ClientCredentials"
)

// Form is one way a grant holds its credentials. Another form is one new file here
// implementing it, and one case in Of.
type Form interface {
	// Kind is the form's name (the Form* constants).
	Kind() string
	// Secrets are the Secrets in the grant's namespace the form reads, by name, in the
	// fingerprint's order. A client object's Secret is not among them: it is the client's,
	// watched through it.
	Secrets() []string
	// Shared is the one of Secrets that many grants often share, "" when none (the grant
	// index files it by name rather than in a bucket).
	Shared() string
	// RefreshToken is where the refresh token is; nil for a form without one.
	RefreshToken() *TokenLocation
	// ClientRef is the client object that supplies the OAuth client; nil when the form
	// carries its own (or needs none).
	ClientRef() *ClientRef
	// ClientLabel is where the OAuth client comes from, for grantkeeper_grant_client_info.
	ClientLabel() (kind, name string)
	// read fills c with what a token request needs, reading through r, or says what is wrong
	// with the inputs; client is the resolved client object (ClientRef's), nil without one.
	read(ctx context.Context, r *Reader, ns string, client *ClientObject, c *Credential) (*credentials.Problem, error)
	// readLive reads the refresh token (and the client id, when the form's own Secrets hold
	// it) from the API server; found is false when the refresh token's Secret is absent.
	readLive(ctx context.Context, live secretGetter, ns string) (l Live, err error)
}

// Of is a grant's credential form: the one place that looks at which of the spec's
// credential fields is set.
func Of(gr oauthv1alpha1.Grant) Form {
	g, ok := gr.(*oauthv1alpha1.GoogleOAuthGrant)
	if !ok {
		return ofOAuthGrant(gr.(*oauthv1alpha1.OAuthGrant))
	}
	switch {
	case g.Spec.ServiceAccountKeySecretRef != nil:
		return serviceAccountKey{ref: *g.Spec.ServiceAccountKeySecretRef, key: g.ServiceAccountKey()}
	case g.Spec.AuthorizedUserSecretRef != nil:
		return authorizedUser{secret: g.Spec.AuthorizedUserSecretRef.Name, key: g.RefreshTokenKey()}
	}
	f := refreshToken{key: g.RefreshTokenKey()}
	if r := g.Spec.RefreshTokenSecretRef; r != nil {
		f.secret = r.Name
	}
	if r := g.Spec.ClientRef; r != nil {
		f.client = &ClientRef{Kind: g.ClientRefKind(), Name: r.Name}
	} else if r := g.Spec.ClientSecretRef; r != nil {
		f.clientSecret = r.Name
	}
	return f
}

// ofOAuthGrant is an OAuthGrant's form: grantType RefreshToken is the refreshToken form with
// a provider client object (its Secrets, token location, record and write-back are the
// same); ClientCredentials has no Secret of its own.
func ofOAuthGrant(g *oauthv1alpha1.OAuthGrant) Form {
	ref := &ClientRef{Kind: g.ClientRefKind(), Name: g.Spec.ClientRef.Name,
		params: oauthtoken.Params{Scopes: g.Spec.Scopes, Resources: g.Spec.Resources, Audience: g.Spec.Audience}}
	if g.Type() == oauthv1alpha1.GrantTypeClientCredentials {
		return clientCredentials{client: ref}
	}
	f := refreshToken{key: g.RefreshTokenKey(), client: ref}
	if r := g.Spec.RefreshTokenSecretRef; r != nil {
		f.secret = r.Name
	}
	return f
}

// ClientRef names a client object: a GoogleOAuthClient or OAuthClient in the grant's
// namespace, or a ClusterGoogleOAuthClient or ClusterOAuthClient.
type ClientRef struct {
	Kind, Name string
	// params are what a provider grant asks for in every token request.
	params oauthtoken.Params
}
