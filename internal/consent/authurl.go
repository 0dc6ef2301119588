package consent

import (
	"slices"

	"golang.org/x/oauth2"
)

// IdentityScopes are asked for with every link, so the ID token names the account.
var IdentityScopes = []string{"openid", "email"}

// AuthRequest is what the authorization URL carries.
type AuthRequest struct {
	AuthURL, ClientID, RedirectURI string
	Scopes                         []string
	State, Verifier, LoginHint     string
}

// RequestScopes are the scopes a link asks Google for: its own plus IdentityScopes, once each.
func RequestScopes(scopes []string) []string {
	out := slices.Clone(scopes)
	for _, s := range IdentityScopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// URL is Google's authorization URL for r: offline access, forced consent (so a refresh
// token always comes back), PKCE S256 and the state. It never sends include_granted_scopes:
// Google would then add every scope the account granted this OAuth client before, which,
// when namespaces share a client, includes other namespaces' scopes (issue 28).
func (r AuthRequest) URL() string {
	conf := oauth2.Config{ClientID: r.ClientID, RedirectURL: r.RedirectURI, Scopes: RequestScopes(r.Scopes),
		Endpoint: oauth2.Endpoint{AuthURL: r.AuthURL}}
	opts := []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.ApprovalForce, oauth2.S256ChallengeOption(r.Verifier)}
	if r.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", r.LoginHint))
	}
	return conf.AuthCodeURL(r.State, opts...)
}
