package oauthdiscovery

import (
	"slices"
	"strings"
	"testing"
)

func TestWellKnownURLs(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		want   []string
		err    string
	}{
		{"https://idp.example.com", []string{"https://idp.example.com/.well-known/oauth-authorization-server", "https://idp.example.com/.well-known/openid-configuration"}, ""},
		{"https://idp.example.com/", []string{"https://idp.example.com/.well-known/oauth-authorization-server", "https://idp.example.com/.well-known/openid-configuration"}, ""},
		// RFC 8414 inserts the well-known part before the path; OpenID appends it.
		{"https://kc.example.com/realms/team", []string{"https://kc.example.com/.well-known/oauth-authorization-server/realms/team", "https://kc.example.com/realms/team/.well-known/openid-configuration"}, ""},
		{"http://127.0.0.1:4444", []string{"http://127.0.0.1:4444/.well-known/oauth-authorization-server", "http://127.0.0.1:4444/.well-known/openid-configuration"}, ""},
		{"https://idp.example.com/?tenant=a", nil, "query or fragment"},
		{"https://idp.example.com/#x", nil, "query or fragment"},
		{"idp.example.com", nil, "not an absolute"},
		{"ftp://idp.example.com", nil, "not an absolute"},
	} {
		got, err := WellKnownURLs(tc.issuer)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one containing %q", tc.issuer, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.issuer, got, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	const issuer = "https://idp.example.com"
	const src = issuer + "/.well-known/openid-configuration"
	for _, tc := range []struct {
		name   string
		issuer string
		body   string
		want   Metadata
		err    string
	}{
		{name: "OpenID configuration", body: `{"issuer":"https://idp.example.com","authorization_endpoint":"https://idp.example.com/auth","token_endpoint":"https://idp.example.com/token","revocation_endpoint":"https://idp.example.com/revoke","token_endpoint_auth_methods_supported":["client_secret_basic","private_key_jwt"],"jwks_uri":"https://idp.example.com/jwks","unknown":{"x":1}}`,
			want: Metadata{Issuer: issuer, AuthorizationEndpoint: issuer + "/auth", TokenEndpoint: issuer + "/token", RevocationEndpoint: issuer + "/revoke", TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt"}, Source: src}},
		{name: "no revocation endpoint", body: `{"issuer":"https://idp.example.com","token_endpoint":"https://idp.example.com/token"}`,
			want: Metadata{Issuer: issuer, TokenEndpoint: issuer + "/token", Source: src}},
		{name: "issuer with a trailing slash in the document", body: `{"issuer":"https://idp.example.com/","token_endpoint":"https://idp.example.com/token"}`,
			want: Metadata{Issuer: issuer + "/", TokenEndpoint: issuer + "/token", Source: src}},
		{name: "issuer with a trailing slash in the spec", issuer: issuer + "/", body: `{"issuer":"https://idp.example.com","token_endpoint":"https://idp.example.com/token"}`,
			want: Metadata{Issuer: issuer, TokenEndpoint: issuer + "/token", Source: src}},
		{name: "loopback http endpoints", issuer: "http://127.0.0.1:4444", body: `{"issuer":"http://127.0.0.1:4444","token_endpoint":"http://127.0.0.1:4444/oauth2/token"}`,
			want: Metadata{Issuer: "http://127.0.0.1:4444", TokenEndpoint: "http://127.0.0.1:4444/oauth2/token", Source: src}},
		{name: "another issuer", body: `{"issuer":"https://evil.example.com","token_endpoint":"https://evil.example.com/token"}`, err: `is the metadata of issuer "https://evil.example.com", not "https://idp.example.com"`},
		{name: "issuer differing beyond a slash", body: `{"issuer":"https://idp.example.com/tenant","token_endpoint":"https://idp.example.com/token"}`, err: "is the metadata of issuer"},
		{name: "no issuer", body: `{"token_endpoint":"https://idp.example.com/token"}`, err: "names no issuer"},
		{name: "no token endpoint", body: `{"issuer":"https://idp.example.com"}`, err: "names no token_endpoint"},
		{name: "http token endpoint", body: `{"issuer":"https://idp.example.com","token_endpoint":"http://idp.example.com/token"}`, err: "token_endpoint"},
		{name: "http revocation endpoint", body: `{"issuer":"https://idp.example.com","token_endpoint":"https://idp.example.com/token","revocation_endpoint":"http://idp.example.com/revoke"}`, err: "revocation_endpoint"},
		{name: "relative authorization endpoint", body: `{"issuer":"https://idp.example.com","token_endpoint":"https://idp.example.com/token","authorization_endpoint":"/auth"}`, err: "authorization_endpoint"},
		{name: "endpoint with a fragment", body: `{"issuer":"https://idp.example.com","token_endpoint":"https://idp.example.com/token#x"}`, err: "fragment"},
		{name: "not JSON", body: `<html>Sign in</html>`, err: "not a JSON metadata document"},
		{name: "JSON array", body: `[]`, err: "not a JSON metadata document"},
		{name: "null", body: `null`, err: "names no issuer"},
		{name: "issuer not a string", body: `{"issuer":5}`, err: "not a JSON metadata document"},
		{name: "empty", body: ``, err: "not a JSON metadata document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := issuer
			if tc.issuer != "" {
				want = tc.issuer
			}
			got, err := Parse([]byte(tc.body), want, src)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if !strings.Contains(err.Error(), src) {
					t.Errorf("error %q does not name the document's URL", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Issuer != tc.want.Issuer || got.TokenEndpoint != tc.want.TokenEndpoint || got.AuthorizationEndpoint != tc.want.AuthorizationEndpoint ||
				got.RevocationEndpoint != tc.want.RevocationEndpoint || got.Source != tc.want.Source || !slices.Equal(got.TokenEndpointAuthMethodsSupported, tc.want.TokenEndpointAuthMethodsSupported) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	m := &Metadata{AuthorizationEndpoint: "https://d/auth", TokenEndpoint: "https://d/token", RevocationEndpoint: "https://d/revoke"}
	for _, tc := range []struct {
		name     string
		explicit Endpoints
		m        *Metadata
		want     Endpoints
	}{
		{"all discovered", Endpoints{}, m, Endpoints{"https://d/auth", "https://d/token", "https://d/revoke"}},
		{"explicit token URL wins", Endpoints{TokenURL: "https://e/token"}, m, Endpoints{"https://d/auth", "https://e/token", "https://d/revoke"}},
		{"every field explicit", Endpoints{"https://e/auth", "https://e/token", "https://e/revoke"}, m, Endpoints{"https://e/auth", "https://e/token", "https://e/revoke"}},
		{"no issuer", Endpoints{TokenURL: "https://e/token"}, nil, Endpoints{TokenURL: "https://e/token"}},
		{"no revocation anywhere", Endpoints{}, &Metadata{TokenEndpoint: "https://d/token"}, Endpoints{TokenURL: "https://d/token"}},
	} {
		if got := Resolve(tc.explicit, tc.m); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
