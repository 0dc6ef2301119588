// Package oauthtoken talks to any standards-following OAuth 2.0 provider's token and
// revocation endpoints (RFC 6749, RFC 7009, RFC 7523 client assertions, RFC 8707 resource
// indicators): refresh with a rotated refresh token handed back, client credentials, the
// authorization code exchange with PKCE, and revocation, with the four client
// authentication methods. Google's specifics stay in internal/tokenclient; a token response
// is checked by the same tokenclient.Validate, and failures are *oauth2.RetrieveError, which
// tokenerr.Classify reads for both.
package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// Token is a validated token response (tokenclient's: RefreshToken is set only when the
// provider rotated it, and must be stored before anything else happens).
type Token = tokenclient.Token

// ErrBadResponse marks a 200 answer that cannot be used (tokenclient's: transient).
var ErrBadResponse = tokenclient.ErrBadResponse

// Client is an OAuth client and how it authenticates.
type Client struct {
	ID string
	// Secret, for client_secret_basic and client_secret_post.
	Secret string
	// Method is spec.tokenEndpointAuthMethod; "" is client_secret_basic.
	Method oauthv1alpha1.TokenEndpointAuthMethod
	// Key signs the client assertion, for private_key_jwt.
	Key *SigningKey
}

func (c Client) method() oauthv1alpha1.TokenEndpointAuthMethod {
	if c.Method == "" {
		return oauthv1alpha1.AuthClientSecretBasic
	}
	return c.Method
}

// Params are what every token request of a grant asks for.
type Params struct {
	// Scopes are sent as scope (space-separated) when set.
	Scopes []string
	// Resources are sent as resource, one parameter each (RFC 8707).
	Resources []string
	// Audience is sent as audience when set.
	Audience string
}

// Endpoint is a provider's token and revocation endpoints reached with one HTTP client
// (tokenclient.NewHTTPClient: timeouts at every stage, no redirects).
type Endpoint struct {
	TokenURL      string
	RevocationURL string
	HTTP          *http.Client
}

// Refresh trades a refresh token for tokens (RFC 6749 section 6), asking for p. now is the
// injected clock's time: the expiry is computed from it, and a client assertion is dated by
// it. A rotated refresh token is in the result's RefreshToken.
func (e *Endpoint) Refresh(ctx context.Context, c Client, refreshToken string, p Params, now time.Time) (*Token, error) {
	conf, err := e.config(c)
	if err != nil {
		return nil, err
	}
	extra, err := e.extraParams(c, p, now)
	if err != nil {
		return nil, err
	}
	// x/oauth2's refresh takes no extra parameters (scope, resource, audience, the client
	// assertion): a transport adds them to its form; the request, its authentication
	// header and the parsing of the answer stay x/oauth2's.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, tokenclient.WithFormParams(e.HTTP, extra))
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, err
	}
	t, err := tokenclient.Validate(tok, refreshToken, now)
	if err != nil {
		return nil, err
	}
	return withRequestedScopes(t, p), nil
}

// withRequestedScopes: an answer without scope carries the scope requested (RFC 6749
// sections 5.1 and 6), so the grant's granted scopes are those asked for.
func withRequestedScopes(t *Token, p Params) *Token {
	if len(t.Scopes) == 0 && len(p.Scopes) > 0 {
		t.Scopes = append([]string(nil), p.Scopes...)
	}
	return t
}

// ClientCredentials obtains the client's own token (RFC 6749 section 4.4) through
// x/oauth2/clientcredentials. A refresh token in the answer is ignored: the grant asks again.
func (e *Endpoint) ClientCredentials(ctx context.Context, c Client, p Params, now time.Time) (*Token, error) {
	if c.method() == oauthv1alpha1.AuthNone {
		return nil, errors.New("a public client (tokenEndpointAuthMethod none) cannot use the client credentials grant")
	}
	conf, err := e.config(c)
	if err != nil {
		return nil, err
	}
	extra, err := e.extraParams(c, Params{Resources: p.Resources, Audience: p.Audience}, now)
	if err != nil {
		return nil, err
	}
	cc := &clientcredentials.Config{
		ClientID: conf.ClientID, ClientSecret: conf.ClientSecret, TokenURL: e.TokenURL,
		Scopes: p.Scopes, EndpointParams: extra, AuthStyle: conf.Endpoint.AuthStyle,
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, e.HTTP))
	if err != nil {
		return nil, err
	}
	// clientcredentials copies the answer into a new oauth2.Token without ExpiresIn (only
	// an Expiry from the wall clock); the raw expires_in is still in its extra fields, and
	// the lifetime is taken from there, against the injected clock.
	if tok.ExpiresIn == 0 {
		tok.ExpiresIn = expiresIn(tok.Extra("expires_in"))
	}
	t, err := tokenclient.Validate(tok, "", now)
	if err != nil {
		return nil, err
	}
	t.RefreshToken = ""
	return withRequestedScopes(t, p), nil
}

// Exchange trades an authorization code and its PKCE verifier for tokens (RFC 6749
// section 4.1.3, RFC 7636), server side. The result must carry a refresh token.
func (e *Endpoint) Exchange(ctx context.Context, c Client, code, redirectURI, verifier string, p Params, now time.Time) (*Token, error) {
	conf, err := e.config(c)
	if err != nil {
		return nil, err
	}
	conf.RedirectURL = redirectURI
	// scope is not part of a code exchange (the code carries the consented scopes).
	extra, err := e.extraParams(c, Params{Resources: p.Resources, Audience: p.Audience}, now)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, tokenclient.WithFormParams(e.HTTP, extra))
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, err
	}
	t, err := tokenclient.Validate(tok, "", now)
	if err != nil {
		return nil, err
	}
	if t.RefreshToken == "" {
		return nil, errors.New("the token endpoint returned no refresh token: the provider may need the offline_access scope (or its own equivalent) in spec.scopes")
	}
	return t, nil
}

// config is the x/oauth2 configuration for c: the auth style carries the method. A public
// client and a private_key_jwt client send no secret; x/oauth2 then puts only client_id in
// the form (RFC 6749 section 2.3.1 / RFC 7523 section 3.2 allow it).
func (e *Endpoint) config(c Client) (*oauth2.Config, error) {
	conf := &oauth2.Config{ClientID: c.ID, Endpoint: oauth2.Endpoint{TokenURL: e.TokenURL}}
	switch c.method() {
	case oauthv1alpha1.AuthClientSecretBasic:
		conf.ClientSecret, conf.Endpoint.AuthStyle = c.Secret, oauth2.AuthStyleInHeader
	case oauthv1alpha1.AuthClientSecretPost:
		conf.ClientSecret, conf.Endpoint.AuthStyle = c.Secret, oauth2.AuthStyleInParams
	case oauthv1alpha1.AuthPrivateKeyJWT:
		if c.Key == nil {
			return nil, errors.New("private_key_jwt without a signing key")
		}
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	case oauthv1alpha1.AuthNone:
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		return nil, fmt.Errorf("unknown token endpoint auth method %q", c.Method)
	}
	if c.method() != oauthv1alpha1.AuthNone && c.method() != oauthv1alpha1.AuthPrivateKeyJWT && c.Secret == "" {
		return nil, fmt.Errorf("%s without a client secret", c.method())
	}
	return conf, nil
}

// extraParams are the form parameters x/oauth2 does not send by itself: scope, resource,
// audience, and for private_key_jwt a fresh client assertion.
func (e *Endpoint) extraParams(c Client, p Params, now time.Time) (url.Values, error) {
	v := url.Values{}
	if len(p.Scopes) > 0 {
		v.Set("scope", strings.Join(p.Scopes, " "))
	}
	if len(p.Resources) > 0 {
		v["resource"] = append([]string(nil), p.Resources...)
	}
	if p.Audience != "" {
		v.Set("audience", p.Audience)
	}
	if c.method() == oauthv1alpha1.AuthPrivateKeyJWT {
		a, err := c.Key.Assertion(c.ID, e.TokenURL, now)
		if err != nil {
			return nil, err
		}
		v.Set("client_assertion_type", ClientAssertionType)
		v.Set("client_assertion", a)
	}
	return v, nil
}

// expiresIn reads a raw expires_in: a JSON number, or a string of digits (PayPal's, which
// x/oauth2 accepts too); 0 when absent or unusable.
func expiresIn(v any) int64 {
	switch x := v.(type) {
	case float64:
		if x > 0 && x < 1<<31 {
			return int64(x)
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 32); err == nil && n > 0 {
			return n
		}
	}
	return 0
}
