package providers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// TestRefreshTokenGrant: a person's refresh token from Hydra (authorization code flow), an
// OAuthClient found by discovery, and an OAuthGrant naming it: the grant turns Ready, and
// the derived Secret holds an access token that Hydra says is active, for this client and
// person, with exactly the grant's scopes. The rotated refresh token Hydra handed back is
// in the user's Secret (their other key kept), and the one it replaced is dead.
func TestRefreshTokenGrant(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scopes := []string{"offline_access", "files.read"}
	c, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretBasic, 0, "files.read", "files.write")
	first := w.consent(c, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...)
	w.refreshTokenSecret("files-refresh-token", first)
	w.oauthClient("hydra", c, oauthv1alpha1.AuthClientSecretBasic, nil, "")
	before := time.Now().Add(-time.Second)
	w.grant("files", "hydra", scopes)

	g := w.waitReady("files")
	if got := cond(g, oauthv1alpha1.ConditionStalled); got != "False/"+oauthv1alpha1.ReasonProgressing {
		t.Errorf("Stalled is %q on a Ready grant, want False/Progressing", got)
	}
	if got := cond(g, oauthv1alpha1.ConditionRevoked); strings.HasPrefix(got, "True") {
		t.Errorf("Revoked is %s on a Ready grant", got)
	}
	_, in := w.liveAccessToken("files")
	_, expiry := w.accessToken("files")
	if !in.Active || in.ClientID != c.ID || in.Subject != w.subject || in.TokenUse != "access_token" {
		t.Fatalf("Hydra says of the published token: %+v; want an active access token of client %s for %s", in, c.ID, w.subject)
	}
	if got := slices.Sorted(slices.Values(strings.Fields(in.Scope))); !slices.Equal(got, slices.Sorted(slices.Values(scopes))) {
		t.Errorf("the token carries scopes %v, want exactly spec.scopes %v", got, scopes)
	}
	// Hydra's exp (default ttl 1h): the Secret's expiry is never later (pods would use a
	// dead token), and earlier only by the time the request took (expires_in counts from
	// Hydra's answer, the grant counts from when it asked).
	if d := expiry.Sub(time.Unix(in.ExpiresAt, 0)); d < -10*time.Second || d > time.Second {
		t.Errorf("the Secret's expiry %v is not Hydra's %v", expiry, time.Unix(in.ExpiresAt, 0))
	}
	if g.Status.ExpiresAt == nil || !g.Status.ExpiresAt.Time.Equal(expiry) || g.Status.LastRefreshTime == nil || g.Status.LastRefreshTime.Time.Before(before) {
		t.Errorf("status expiresAt %v (Secret: %v), lastRefreshTime %v", g.Status.ExpiresAt, expiry, g.Status.LastRefreshTime)
	}
	if g.Status.AccessTokenSecretName != "files-access-token" || g.Status.ClientID != c.ID {
		t.Errorf("status accessTokenSecretName %q, clientID %q; want files-access-token, %s", g.Status.AccessTokenSecretName, g.Status.ClientID, c.ID)
	}
	if got := slices.Sorted(slices.Values(g.Status.GrantedScopes)); !slices.Equal(got, slices.Sorted(slices.Values(scopes))) {
		t.Errorf("status grantedScopes %v, want %v", got, scopes)
	}
	if got := cond(g, oauthv1alpha1.ConditionScopesGranted); got != "True/"+oauthv1alpha1.ReasonAllScopesGranted {
		t.Errorf("ScopesGranted is %q, want True/AllScopesGranted", got)
	}

	// Hydra rotated the refresh token: the new one is stored, the old one is dead.
	if rt := w.refreshToken("files-refresh-token"); rt == first {
		t.Fatal("the refresh-token Secret still holds the token Hydra rotated out: the grant is one refresh from losing its access")
	}
	w.liveRefreshToken("files-refresh-token")
	if w.introspect(first).Active {
		t.Error("the first refresh token is still active after a refresh")
	}
}

// TestRotationWrittenBack: Hydra rotates the refresh token at every refresh and treats a
// second use of an old one as theft (it revokes the family). With 10-second access tokens
// (the client's lifespan at Hydra) and refreshBefore 7s the grant refreshes every few
// seconds on its own: after each refresh the user's Secret holds the new refresh token,
// the old one is dead at Hydra, the derived Secret holds the newest access token (the
// previous one dead too), and the grant stays Ready throughout.
func TestRotationWrittenBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scopes := []string{"offline_access", "files.read"}
	c, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretBasic, 10*time.Second, "files.read")
	first := w.consent(c, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...)
	w.refreshTokenSecret("rot-refresh-token", first)
	w.oauthClient("hydra", c, oauthv1alpha1.AuthClientSecretBasic, nil, "")
	w.grant("rot", "hydra", scopes, func(s *oauthv1alpha1.OAuthGrantSpec) {
		s.RefreshBefore = &metav1.Duration{Duration: 7 * time.Second}
	})
	g := w.waitReady("rot")
	if g.Status.ExpiresAt == nil || g.Status.LastRefreshTime == nil {
		t.Fatalf("no expiresAt or lastRefreshTime in a Ready status: %+v", g.Status)
	}
	if life := g.Status.ExpiresAt.Sub(g.Status.LastRefreshTime.Time); life < 8*time.Second || life > 11*time.Second {
		t.Errorf("the token's lifetime in status is %v, want Hydra's 10 s for this client", life)
	}

	// Every refresh token the Secret shows, in order, and every access token published.
	rts := []string{first}
	var ats []string
	notReady := ""
	w.eventually(60*time.Second, "3 refreshes, each rotated refresh token written back", func() (bool, string) {
		g := w.getGrant("rot")
		if c := cond(g, oauthv1alpha1.ConditionReady); c != "True/"+oauthv1alpha1.ReasonTokenValid && notReady == "" {
			notReady = c + ": " + message(g, oauthv1alpha1.ConditionReady)
		}
		if rt := w.refreshToken("rot-refresh-token"); rt != rts[len(rts)-1] {
			rts = append(rts, rt)
		}
		if at, _ := w.accessToken("rot"); len(ats) == 0 || at != ats[len(ats)-1] {
			ats = append(ats, at)
		}
		return len(rts) >= 4, strings.Repeat("rotated ", len(rts)-1)
	})
	if notReady != "" {
		t.Errorf("the grant left Ready while rotating: %s", notReady)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(rts)))) != len(rts) {
		t.Error("a refresh token came back into the Secret after it was rotated out")
	}
	for i, rt := range rts[:len(rts)-1] {
		if w.introspect(rt).Active {
			t.Errorf("refresh token %d of %d is still active at Hydra after it was rotated out", i+1, len(rts))
		}
	}
	for i, at := range ats[:len(ats)-1] {
		if w.introspect(at).Active {
			t.Errorf("access token %d of %d is still active after the refresh that replaced it", i+1, len(ats))
		}
	}
	// The newest pair works: read both again until a refresh does not fall in between.
	w.eventually(30*time.Second, "the stored refresh token and the published access token both active at Hydra", func() (bool, string) {
		rt := w.refreshToken("rot-refresh-token")
		at, _ := w.accessToken("rot")
		rin, ain := w.introspect(rt), w.introspect(at)
		return rin.Active && ain.Active && rt == w.refreshToken("rot-refresh-token"), ""
	})
	g = w.waitReady("rot")
	if got := cond(g, oauthv1alpha1.ConditionRevoked); strings.HasPrefix(got, "True") {
		t.Errorf("Revoked is %s after the rotations: an old refresh token was used again", got)
	}
	for _, e := range w.events("rot") {
		switch {
		case strings.HasPrefix(e, "Warning/"+oauthv1alpha1.ReasonTokenEndpointError) && strings.Contains(e, "server_error"):
			// Hydra's in-memory store refusing a write that raced another test's (retried).
			t.Logf("Hydra failed a refresh on its own: %s", e)
		case strings.HasPrefix(e, "Warning/"):
			t.Errorf("a warning while rotating: %s", e)
		}
	}
}

// TestClientAuthMethods: client_secret_post and private_key_jwt clients (an RSA key whose
// public half Hydra holds in the client's JWKS, the key id in privateKeySecretRef) get
// their grants Ready, with an active token; each rotated refresh token is written back.
func TestClientAuthMethods(t *testing.T) {
	t.Parallel()
	for _, method := range []oauthv1alpha1.TokenEndpointAuthMethod{oauthv1alpha1.AuthClientSecretPost, oauthv1alpha1.AuthPrivateKeyJWT} {
		t.Run(string(method), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			scopes := []string{"offline_access", "files.read"}
			c, key, pemKey := w.userClient(method, 0, "files.read")
			kid := ""
			if key != nil {
				kid = key.KeyID
			}
			first := w.consent(c, method, key, scopes...)
			w.refreshTokenSecret("m-refresh-token", first)
			// The token requests are counted through a proxy named as tokenURL (not for
			// private_key_jwt: Hydra wants its own token URL as the assertion's audience).
			var proxy *countingProxy
			var endpoints []func(*oauthv1alpha1.OAuthClientSpec)
			if method != oauthv1alpha1.AuthPrivateKeyJWT {
				proxy = w.countingProxy()
				endpoints = append(endpoints, func(s *oauthv1alpha1.OAuthClientSpec) {
					s.Endpoints = &oauthv1alpha1.OAuthEndpoints{TokenURL: proxy.URL + "/oauth2/token"}
				})
			}
			requests := func(want int64) {
				t.Helper()
				if proxy == nil {
					return
				}
				w.poke("m")
				if got := proxy.issued.Load(); got != want {
					t.Errorf("%d tokens issued so far, want %d", got, want)
				}
			}
			w.oauthClient("hydra", c, method, pemKey, kid, endpoints...)
			w.grant("m", "hydra", scopes)
			w.waitReady("m")
			requests(1)
			at, in := w.liveAccessToken("m")
			if in.ClientID != c.ID {
				t.Errorf("Hydra says of the published token: %+v; want active, client %s", in, c.ID)
			}
			if rt := w.refreshToken("m-refresh-token"); rt == first {
				t.Error("the Secret holds the rotated-out refresh token")
			}
			w.liveRefreshToken("m-refresh-token")
			// One more refresh on request goes through the same authentication.
			v := w.requestRefresh("m")
			w.waitHandled("m", v)
			w.waitReady("m")
			requests(2)
			// A new token, active (a refresh Hydra failed on its own is retried by backoff).
			w.eventually(30*time.Second, "a new active token after the manual refresh", func() (bool, string) {
				at2, in := w.liveAccessToken("m")
				return at2 != at, fmt.Sprintf("same token: %v, %+v", at2 == at, in)
			})
		})
	}
}
