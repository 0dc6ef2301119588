package oauthdiscovery

import (
	"strings"
	"testing"

	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// FuzzParse: whatever a server sends, Parse does not panic, and what it accepts names the
// issuer asked for and a token endpoint that is https (or loopback http) without a fragment.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"issuer":"https://idp.example.com","token_endpoint":"https://idp.example.com/token","revocation_endpoint":"https://idp.example.com/revoke"}`,
		`{"issuer":"https://idp.example.com/","token_endpoint":"http://127.0.0.1/token"}`,
		`{"issuer":"https://evil.example.com","token_endpoint":"https://evil.example.com/token"}`,
		`{"issuer":"https://idp.example.com","token_endpoint":"http://idp.example.com/token"}`,
		`{"issuer":"https://idp.example.com","token_endpoint":"https://idp.example.com/t#f"}`,
		`{"issuer":"https://idp.example.com","token_endpoint":"javascript:alert(1)"}`,
		`{"issuer":["x"]}`, `null`, `[]`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	const issuer = "https://idp.example.com"
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body, issuer, issuer+"/.well-known/openid-configuration")
		if err != nil {
			return
		}
		if strings.TrimSuffix(m.Issuer, "/") != issuer {
			t.Fatalf("accepted the metadata of issuer %q", m.Issuer)
		}
		if m.TokenEndpoint == "" || tokenclient.ValidateURL(m.TokenEndpoint) != nil || strings.Contains(m.TokenEndpoint, "#") {
			t.Fatalf("accepted token endpoint %q", m.TokenEndpoint)
		}
		for _, u := range []string{m.AuthorizationEndpoint, m.RevocationEndpoint} {
			if u != "" && (tokenclient.ValidateURL(u) != nil || strings.Contains(u, "#")) {
				t.Fatalf("accepted endpoint %q", u)
			}
		}
	})
}
