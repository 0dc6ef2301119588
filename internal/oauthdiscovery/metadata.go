// Package oauthdiscovery reads an OAuth 2.0 provider's endpoints from its issuer: the RFC 8414
// authorization server metadata, else OpenID Connect Discovery's configuration. Parsing and
// choosing are pure (Parse, WellKnownURLs, Resolve); Fetcher does the bounded HTTP.
package oauthdiscovery

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// Metadata is what grantkeeper uses of a provider's metadata document.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	// Source is the URL the document was read from (not in the document).
	Source string `json:"-"`
}

// Endpoints are the URLs a client uses.
type Endpoints struct {
	AuthorizationURL, TokenURL, RevocationURL string
}

// WellKnownURLs are the metadata URLs of issuer, in the order they are tried:
//   - RFC 8414 section 3.1: /.well-known/oauth-authorization-server inserted between the
//     host and the issuer's path (the same as appending it when the issuer has no path);
//   - OpenID Connect Discovery 1.0 section 4: /.well-known/openid-configuration appended to
//     the issuer (Keycloak's realms, Entra ID's tenants and Okta's authorization servers
//     are found here).
func WellKnownURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("issuer %q is not an absolute http(s) URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(issuer, "#") {
		return nil, fmt.Errorf("issuer %q has a query or fragment, which RFC 8414 section 2 does not allow", issuer)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	base := u.Scheme + "://" + u.Host
	return []string{
		base + "/.well-known/oauth-authorization-server" + path,
		base + path + "/.well-known/openid-configuration",
	}, nil
}

// Parse reads a metadata document served at source for issuer. The document's issuer must
// be issuer (RFC 8414 section 3.3, OpenID Discovery section 4.3: otherwise anyone able to
// serve a document could name their own token endpoint); a single trailing slash is
// ignored, since providers differ there (Auth0's issuer ends in one) and users type both.
// The token endpoint is required; every endpoint must be https (http only to loopback).
func Parse(body []byte, issuer, source string) (Metadata, error) {
	var m Metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return Metadata{}, fmt.Errorf("%s is not a JSON metadata document: %v", source, shorten(err.Error()))
	}
	m.Source = source
	if m.Issuer == "" {
		return Metadata{}, fmt.Errorf("%s names no issuer", source)
	}
	if strings.TrimSuffix(m.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return Metadata{}, fmt.Errorf("%s is the metadata of issuer %q, not %q: check spec.issuerURL", source, shorten(m.Issuer), issuer)
	}
	if m.TokenEndpoint == "" {
		return Metadata{}, fmt.Errorf("%s names no token_endpoint: set spec.endpoints.tokenURL", source)
	}
	for name, v := range map[string]string{"token_endpoint": m.TokenEndpoint, "authorization_endpoint": m.AuthorizationEndpoint, "revocation_endpoint": m.RevocationEndpoint} {
		if v == "" {
			continue
		}
		if err := checkEndpoint(v); err != nil {
			return Metadata{}, fmt.Errorf("%s: %s: %w", source, name, err)
		}
	}
	return m, nil
}

// checkEndpoint: https (http to loopback only), and no fragment (RFC 6749 section 3.1/3.2).
func checkEndpoint(raw string) error {
	if len(raw) > 2048 {
		return fmt.Errorf("URL longer than 2048 bytes")
	}
	if err := tokenclient.ValidateURL(raw); err != nil {
		return err
	}
	if strings.Contains(raw, "#") {
		return fmt.Errorf("%q has a fragment", raw)
	}
	return nil
}

// Resolve is the endpoints in use: each explicit one (non-empty in explicit) wins over the
// discovered one (m may be nil when there is no issuer).
func Resolve(explicit Endpoints, m *Metadata) Endpoints {
	out := explicit
	if m == nil {
		return out
	}
	if out.AuthorizationURL == "" {
		out.AuthorizationURL = m.AuthorizationEndpoint
	}
	if out.TokenURL == "" {
		out.TokenURL = m.TokenEndpoint
	}
	if out.RevocationURL == "" {
		out.RevocationURL = m.RevocationEndpoint
	}
	return out
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
