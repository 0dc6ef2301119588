package hydra

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Admin calls Hydra's admin API.
type Admin struct {
	URL  string
	HTTP *http.Client
}

// ClientSpec is what CreateClient registers (Hydra's OAuth2Client, the fields tests use).
type ClientSpec struct {
	ClientID                string              `json:"client_id,omitempty"`
	ClientSecret            string              `json:"client_secret,omitempty"`
	GrantTypes              []string            `json:"grant_types,omitempty"`
	ResponseTypes           []string            `json:"response_types,omitempty"`
	RedirectURIs            []string            `json:"redirect_uris,omitempty"`
	Scope                   string              `json:"scope,omitempty"`
	Audience                []string            `json:"audience,omitempty"`
	TokenEndpointAuthMethod string              `json:"token_endpoint_auth_method,omitempty"`
	TokenEndpointAuthAlg    string              `json:"token_endpoint_auth_signing_alg,omitempty"`
	JWKS                    *jose.JSONWebKeySet `json:"jwks,omitempty"`
	// SkipConsent: Hydra skips the consent screen (for first-party clients).
	SkipConsent bool `json:"skip_consent,omitempty"`
	// RefreshTokenGrantAccessTokenLifespan ("10s") is the lifetime of the access tokens this
	// client gets by refreshing, in place of the server's ttl.access_token: one Hydra serves
	// clients with short-lived tokens beside the rest.
	RefreshTokenGrantAccessTokenLifespan string `json:"refresh_token_grant_access_token_lifespan,omitempty"`
}

// Client is a registered client. Secret is empty for public and private_key_jwt clients.
type Client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// CreateClient registers a client.
func (a *Admin) CreateClient(ctx context.Context, spec ClientSpec) (Client, error) {
	var c Client
	err := a.do(ctx, http.MethodPost, "/admin/clients", nil, spec, http.StatusCreated, &c)
	return c, err
}

// DeleteClient removes a client (its tokens stop working).
func (a *Admin) DeleteClient(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "/admin/clients/"+url.PathEscape(id), nil, nil, http.StatusNoContent, nil)
}

// UserClient registers a confidential client for the authorization code flow with refresh
// tokens (scopes openid offline_access and extra), authenticating with method
// (client_secret_basic or client_secret_post).
func (a *Admin) UserClient(ctx context.Context, method, redirectURI string, scopes ...string) (Client, error) {
	return a.CreateClient(ctx, ClientSpec{
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		RedirectURIs:            []string{redirectURI},
		Scope:                   strings.Join(append([]string{"openid", "offline_access"}, scopes...), " "),
		TokenEndpointAuthMethod: method,
	})
}

// PublicClient registers a public client (token_endpoint_auth_method none: PKCE only).
func (a *Admin) PublicClient(ctx context.Context, redirectURI string, scopes ...string) (Client, error) {
	return a.CreateClient(ctx, ClientSpec{
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		RedirectURIs:            []string{redirectURI},
		Scope:                   strings.Join(append([]string{"openid", "offline_access"}, scopes...), " "),
		TokenEndpointAuthMethod: "none",
	})
}

// PrivateKeyJWTClient registers spec (grant types, scopes, redirect URIs, audience) as a
// client that authenticates with a JWT signed by key (alg RS256 for RSA keys, ES256 for
// P-256...), its public half published under kid in the client's JWKS.
func (a *Admin) PrivateKeyJWTClient(ctx context.Context, spec ClientSpec, key crypto.Signer, kid, alg string) (Client, error) {
	spec.TokenEndpointAuthMethod = "private_key_jwt"
	spec.TokenEndpointAuthAlg = alg
	spec.JWKS = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}}}
	if len(spec.RedirectURIs) > 0 && len(spec.ResponseTypes) == 0 {
		spec.ResponseTypes = []string{"code"}
	}
	return a.CreateClient(ctx, spec)
}

// ClientCredentialsClient registers a confidential client for the client credentials grant.
func (a *Admin) ClientCredentialsClient(ctx context.Context, method string, audience []string, scopes ...string) (Client, error) {
	return a.CreateClient(ctx, ClientSpec{
		GrantTypes:              []string{"client_credentials"},
		Scope:                   strings.Join(scopes, " "),
		Audience:                audience,
		TokenEndpointAuthMethod: method,
	})
}

// RevokeConsent withdraws subject's consent to client (every consent when client is
// empty): Hydra revokes the tokens issued under it, and the next refresh fails with invalid_grant.
func (a *Admin) RevokeConsent(ctx context.Context, subject, client string) error {
	q := url.Values{"subject": {subject}}
	if client != "" {
		q.Set("client", client)
	} else {
		q.Set("all", "true")
	}
	return a.do(ctx, http.MethodDelete, "/admin/oauth2/auth/sessions/consent", q, nil, http.StatusNoContent, nil)
}

// DeleteClientTokens deletes every access and refresh token issued to the client.
func (a *Admin) DeleteClientTokens(ctx context.Context, client string) error {
	return a.do(ctx, http.MethodDelete, "/admin/oauth2/tokens", url.Values{"client_id": {client}}, nil, http.StatusNoContent, nil)
}

// Introspection is Hydra's answer about a token (RFC 7662).
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope"`
	ClientID  string `json:"client_id"`
	Subject   string `json:"sub"`
	TokenUse  string `json:"token_use"`
	ExpiresAt int64  `json:"exp"`
	Audience  []string
}

// Introspect asks Hydra whether a token (access or refresh) is active.
func (a *Admin) Introspect(ctx context.Context, token string) (Introspection, error) {
	var in struct {
		Introspection
		Aud []string `json:"aud"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/admin/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return Introspection{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := a.send(req, http.StatusOK, &in); err != nil {
		return Introspection{}, err
	}
	in.Introspection.Audience = in.Aud
	return in.Introspection, nil
}

// do sends body as JSON and decodes the answer into out when it has status want.
func (a *Admin) do(ctx context.Context, method, path string, q url.Values, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	u := a.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.send(req, want, out)
}

func (a *Admin) send(req *http.Request, want int, out any) error {
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("hydra admin %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("hydra admin %s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("hydra admin %s %s: HTTP %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("hydra admin %s %s: %w", req.Method, req.URL.Path, err)
		}
	}
	return nil
}
