package hydra

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestHydra checks the behaviours the provider tests rely on, against the running server:
// discovery, a client, the authorization code flow through the login and consent app,
// refresh-token rotation with reuse refused, consent revocation, and Stop.
func TestHydra(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := New(t, Options{AccessTokenTTL: 5 * time.Minute})

	// Discovery names the endpoints the helpers use.
	resp, err := http.Get(s.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&disc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{"token_endpoint": s.TokenURL(), "authorization_endpoint": s.AuthURL(), "revocation_endpoint": s.RevokeURL()} {
		if disc[k] != want {
			t.Errorf("discovery %s = %v, want %s", k, disc[k], want)
		}
	}
	if iss, _ := disc["issuer"].(string); strings.TrimSuffix(iss, "/") != s.Issuer {
		t.Errorf("discovery issuer = %q, want %s", iss, s.Issuer)
	}

	const redirect = "http://127.0.0.1:1/callback"
	c, err := s.Admin.UserClient(ctx, "client_secret_basic", redirect, "read")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.Secret == "" {
		t.Fatalf("client without id or secret: %+v", c)
	}
	verifier := oauth2.GenerateVerifier()
	q, err := s.Authorize(ctx, AuthRequest{ClientID: c.ID, RedirectURI: redirect, Scopes: []string{"openid", "offline_access", "read"},
		State: "state-123456789", CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), LoginHint: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("state") != "state-123456789" || q.Get("code") == "" {
		t.Fatalf("redirect query %v: want the state and a code", q)
	}
	if got := s.App.Requests(); len(got) != 1 || got[0].Subject != "alice@example.com" || !slices.Contains(got[0].Scopes, "read") {
		t.Fatalf("consent requests %+v: want one for alice@example.com with read", got)
	}
	conf := &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.ExpiresIn <= 0 || tok.ExpiresIn > 300 {
		t.Fatalf("exchange: refresh token %v, expires_in %d; want a refresh token and at most 300 s", tok.RefreshToken != "", tok.ExpiresIn)
	}

	// Rotation: a refresh returns a new refresh token; the old one is refused.
	first := tok.RefreshToken
	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == first {
		t.Fatal("the refresh did not rotate the refresh token")
	}
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token()
	if re := (*oauth2.RetrieveError)(nil); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reusing the rotated-out refresh token: %v, want invalid_grant", err)
	}

	// Revoking the consent (a fresh grant: the reuse above revoked the family) refuses the next refresh.
	q, err = s.Authorize(ctx, AuthRequest{ClientID: c.ID, RedirectURI: redirect, Scopes: []string{"offline_access"},
		State: "state-abcdefghij", CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier)})
	if err != nil {
		t.Fatal(err)
	}
	tok3, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Admin.RevokeConsent(ctx, DefaultSubject, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken}).Token()
	if re := (*oauth2.RetrieveError)(nil); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after the consent was revoked: %v, want invalid_grant", err)
	}

	// Stop ends our process.
	s.Stop()
	select {
	case <-s.Exited():
	default:
		t.Fatal("Stop returned with Hydra still running")
	}
	if st := s.cmd.ProcessState; st == nil || !st.Exited() && st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("Hydra's end: %v; want an exit after SIGTERM", st)
	}
}
