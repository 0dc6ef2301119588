package providers_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/hydra"
)

// TestClientCredentialsGrant: grantType ClientCredentials with a Hydra client-credentials
// client: Ready, the published token is the client's own (subject the client), active,
// with exactly the grant's scopes and its audience; no refresh-token Secret is read or
// written. A scope the client is not registered for is refused for good (invalid_scope).
func TestClientCredentialsGrant(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const audience = "https://api.example.com"
	c := hydraRetry(t, "registering the client", func() (hydra.Client, error) {
		return idp.Admin.ClientCredentialsClient(w.Ctx, "client_secret_basic", []string{audience}, "api.read", "api.write")
	})
	w.oauthClient("svc", c, oauthv1alpha1.AuthClientSecretBasic, nil, "")
	cc := func(scopes ...string) func(*oauthv1alpha1.OAuthGrantSpec) {
		return func(s *oauthv1alpha1.OAuthGrantSpec) {
			s.GrantType = oauthv1alpha1.GrantTypeClientCredentials
			s.RefreshTokenSecretRef = nil
			s.Scopes = scopes
			s.Audience = audience
		}
	}
	w.grant("api", "svc", nil, cc("api.read"))
	g := w.waitReady("api")
	at, in := w.liveAccessToken("api")
	if !in.Active || in.ClientID != c.ID || in.Subject != c.ID || in.Scope != "api.read" || !slices.Contains(in.Audience, audience) {
		t.Errorf("Hydra says of the published token: %+v; want active, the client's own (sub %s), scope api.read, audience %s", in, c.ID, audience)
	}
	if got := cond(g, oauthv1alpha1.ConditionStalled); got != "False/"+oauthv1alpha1.ReasonProgressing {
		t.Errorf("Stalled is %q, want False/Progressing", got)
	}

	// A manual refresh asks again: a new token, also active.
	v := w.requestRefresh("api")
	w.waitHandled("api", v)
	w.waitReady("api")
	if at2, _ := w.liveAccessToken("api"); at2 == at {
		t.Error("the manual refresh published the same token")
	}

	// A scope outside the client's registration: Hydra answers invalid_scope, which no
	// retry fixes.
	w.grant("admin", "svc", nil, cc("admin"))
	g = w.waitCondition("admin", oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonTokenRequestRejected)
	if msg := message(g, oauthv1alpha1.ConditionReady); !strings.Contains(msg, "invalid_scope") {
		t.Errorf("TokenRequestRejected message %q does not carry the provider's error code", msg)
	}
	w.waitCondition("admin", oauthv1alpha1.ConditionStalled, "True/"+oauthv1alpha1.ReasonTokenRequestRejected)

	// Only the client's Secret and the derived ones: nothing stands for a refresh token.
	var secrets corev1.SecretList
	if err := w.C.List(w.Ctx, &secrets, client.InNamespace(w.Name)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range secrets.Items {
		names = append(names, s.Name)
	}
	if want := []string{"api-access-token", "svc-secret"}; !slices.Equal(slices.Sorted(slices.Values(names)), want) {
		t.Errorf("Secrets in the namespace: %v, want %v", names, want)
	}
}

// TestRevokedAtProvider: the person's consent is withdrawn at Hydra (its admin API, as a
// user's "remove access" page does): at the next refresh (a manual one here) the grant
// turns Revoked=True and Ready=False, both InvalidGrant, and Stalled=True; the refresh
// token stays in the user's Secret; no token request follows until something changes (a
// new manual request is one). A new consent stored in the Secret brings it back by itself.
// The manager's token requests are counted by a pass-through proxy to Hydra named as the
// client's tokenURL.
func TestRevokedAtProvider(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scopes := []string{"offline_access", "files.read"}
	c, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretBasic, 0, "files.read")
	w.refreshTokenSecret("gone-refresh-token", w.consent(c, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...))
	proxy := w.countingProxy()
	w.oauthClient("hydra", c, oauthv1alpha1.AuthClientSecretBasic, nil, "", func(s *oauthv1alpha1.OAuthClientSpec) {
		s.Endpoints = &oauthv1alpha1.OAuthEndpoints{TokenURL: proxy.URL + "/oauth2/token"}
	})
	w.grant("gone", "hydra", scopes)
	w.waitReady("gone")
	if proxy.tokens.Load() == 0 {
		t.Fatal("no token request went through the proxy named as tokenURL: the count below would prove nothing")
	}
	// A manual refresh of a healthy grant is one token request, not two: with rotation a
	// second one would only churn the family (and race the first's write-back).
	n := proxy.issued.Load()
	v := w.requestRefresh("gone")
	w.waitHandled("gone", v)
	w.eventually(30*time.Second, "the manual refresh issued a token", func() (bool, string) { return proxy.issued.Load() > n, "" })
	w.poke("gone")
	if got := proxy.issued.Load(); got != n+1 {
		t.Errorf("%d tokens issued for one manual refresh, want 1", got-n)
	}
	stored := w.refreshToken("gone-refresh-token")

	hydraRetry(t, "revoking the consent", func() (struct{}, error) { return struct{}{}, idp.Admin.RevokeConsent(w.Ctx, w.subject, c.ID) })
	if w.introspect(stored).Active {
		t.Fatal("Hydra still holds the refresh token active after the consent was revoked")
	}
	v = w.requestRefresh("gone")
	g := w.waitCondition("gone", oauthv1alpha1.ConditionRevoked, "True/"+oauthv1alpha1.ReasonInvalidGrant)
	if got := cond(g, oauthv1alpha1.ConditionReady); got != "False/"+oauthv1alpha1.ReasonInvalidGrant {
		t.Errorf("Ready is %q with Revoked=True, want False/InvalidGrant", got)
	}
	if msg := message(g, oauthv1alpha1.ConditionReady); !strings.Contains(msg, `"gone-refresh-token"`) {
		t.Errorf("the Ready message does not name the refresh-token Secret to repair: %q", msg)
	}
	w.waitCondition("gone", oauthv1alpha1.ConditionStalled, "True/"+oauthv1alpha1.ReasonInvalidGrant)
	w.waitEvent("gone", "Warning/"+oauthv1alpha1.ReasonInvalidGrant)
	if rt := w.refreshToken("gone-refresh-token"); rt != stored {
		t.Error("the refresh-token Secret changed after invalid_grant: the user's Secret is theirs to repair")
	}

	// The request that failed is handled; nothing asks Hydra again until an input changes.
	w.waitHandled("gone", v)
	n = proxy.tokens.Load()
	w.poke("gone")
	w.poke("gone")
	if got := proxy.tokens.Load(); got != n {
		t.Errorf("%d token request(s) after invalid_grant with nothing changed, want none", got-n)
	}
	// A new manual request is a change: exactly one more attempt.
	v = w.requestRefresh("gone")
	w.waitHandled("gone", v)
	w.poke("gone")
	if got := proxy.tokens.Load(); got != n+1 {
		t.Errorf("%d token request(s) for a new manual request after invalid_grant, want exactly 1", got-n)
	}

	// Repair: the person consents again; the new refresh token goes into the Secret.
	fresh := w.consent(c, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...)
	n = proxy.issued.Load()
	s := w.GetSecret("gone-refresh-token")
	s.Data["refresh_token"] = []byte(fresh)
	if err := w.C.Update(w.Ctx, s); err != nil {
		t.Fatal(err)
	}
	w.waitReady("gone")
	w.waitCondition("gone", oauthv1alpha1.ConditionRevoked, "False/"+oauthv1alpha1.ReasonRefreshSucceeded)
	w.waitCondition("gone", oauthv1alpha1.ConditionStalled, "False/"+oauthv1alpha1.ReasonProgressing)
	w.poke("gone")
	if got := proxy.issued.Load(); got != n+1 {
		t.Errorf("%d tokens issued for the repair, want 1 (with rotation, each extra refresh revokes the access token pods were just given)", got-n)
	}
	w.liveAccessToken("gone")
}

// TestBadInput: what a user can get wrong with an OAuthGrant is reported with a reason and
// a message naming the object to fix, and fixing it makes the grant Ready without
// touching the grant: a missing OAuthClient (ClientNotFound), a missing refresh-token
// Secret (SecretNotFound) or key (SecretKeyMissing), a wrong client secret (InvalidClient).
func TestBadInput(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scopes := []string{"offline_access", "files.read"}
	c, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretBasic, 0, "files.read")

	// The client object does not exist yet.
	w.refreshTokenSecret("orphan-refresh-token", w.consent(c, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...))
	w.grant("orphan", "later", scopes)
	g := w.waitCondition("orphan", oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonClientNotFound)
	if msg := message(g, oauthv1alpha1.ConditionReady); !strings.Contains(msg, `"later"`) || !strings.Contains(msg, "spec.clientRef") {
		t.Errorf("ClientNotFound message %q does not name the OAuthClient and the field", msg)
	}
	w.waitCondition("orphan", oauthv1alpha1.ConditionStalled, "True/"+oauthv1alpha1.ReasonClientNotFound)
	w.waitEvent("orphan", "Warning/"+oauthv1alpha1.ReasonClientNotFound)
	w.oauthClient("later", c, oauthv1alpha1.AuthClientSecretBasic, nil, "")
	w.waitReady("orphan")

	// The refresh-token Secret does not exist, then lacks the key.
	c2, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretBasic, 0, "files.read")
	w.oauthClient("second", c2, oauthv1alpha1.AuthClientSecretBasic, nil, "")
	w.grant("nosecret", "second", scopes)
	g = w.waitCondition("nosecret", oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonSecretNotFound)
	if msg := message(g, oauthv1alpha1.ConditionReady); !strings.Contains(msg, `"nosecret-refresh-token"`) {
		t.Errorf("SecretNotFound message %q does not name the Secret", msg)
	}
	w.waitCondition("nosecret", oauthv1alpha1.ConditionStalled, "True/"+oauthv1alpha1.ReasonSecretNotFound)
	rt := w.consent(c2, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...)
	w.Secret("nosecret-refresh-token", map[string]string{"token": rt})
	g = w.waitCondition("nosecret", oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonSecretKeyMissing)
	if msg := message(g, oauthv1alpha1.ConditionReady); !strings.Contains(msg, `"refresh_token"`) || !strings.Contains(msg, `"nosecret-refresh-token"`) {
		t.Errorf("SecretKeyMissing message %q does not name the key and the Secret", msg)
	}
	s := w.GetSecret("nosecret-refresh-token")
	s.Data = map[string][]byte{"refresh_token": []byte(rt), "note": []byte("kept by its owner")}
	if err := w.C.Update(w.Ctx, s); err != nil {
		t.Fatal(err)
	}
	w.waitReady("nosecret")

	// A client secret Hydra does not accept: InvalidClient, and the Secret is what to fix.
	c3, _, _ := w.userClient(oauthv1alpha1.AuthClientSecretBasic, 0, "files.read")
	w.refreshTokenSecret("wrong-refresh-token", w.consent(c3, oauthv1alpha1.AuthClientSecretBasic, nil, scopes...))
	bad := c3
	bad.Secret = "not-the-client-secret-" + c3.ID[:8]
	w.oauthClient("wrong", bad, oauthv1alpha1.AuthClientSecretBasic, nil, "")
	w.grant("wrong", "wrong", scopes)
	g = w.waitCondition("wrong", oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonInvalidClient)
	if got := cond(g, oauthv1alpha1.ConditionRevoked); strings.HasPrefix(got, "True") {
		t.Errorf("a wrong client secret turned the grant Revoked (%s): the refresh token is fine", got)
	}
	s = w.GetSecret("wrong-secret")
	s.Data = map[string][]byte{"client_secret": []byte(c3.Secret)}
	if err := w.C.Update(w.Ctx, s); err != nil {
		t.Fatal(err)
	}
	w.waitReady("wrong")
}
