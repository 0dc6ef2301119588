package tokenclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/googleapi"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

var client = credentials.Client{ID: "id.apps.googleusercontent.com", Secret: "GOCSPX-secret"}

func setup(t *testing.T) (*fakegoogle.Server, *tokenclient.Endpoint) {
	t.Helper()
	g := fakegoogle.New()
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	g.AddClient(client.ID, client.Secret)
	return g, &tokenclient.Endpoint{TokenURL: g.TokenURL(), RevokeURL: g.RevokeURL(), HTTP: tokenclient.NewHTTPClient(2 * time.Second)}
}

func TestRefresh(t *testing.T) {
	g, e := setup(t)
	rt := g.NewRefreshToken(client.ID, "openid", "https://www.googleapis.com/auth/analytics.readonly")
	g.SetLifetime(3599 * time.Second)
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	tok, err := e.Refresh(context.Background(), client, rt, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if !g.AccessTokenValid(tok.AccessToken) || tok.TokenType != "Bearer" {
		t.Errorf("token not usable at the API: %+v", tok.TokenType)
	}
	if want := now.Add(3599 * time.Second); !tok.Expiry.Equal(want) {
		t.Errorf("Expiry = %v, want %v (from the injected clock)", tok.Expiry, want)
	}
	if strings.Join(tok.Scopes, " ") != "openid https://www.googleapis.com/auth/analytics.readonly" {
		t.Errorf("Scopes = %v", tok.Scopes)
	}
	if tok.RefreshToken != "" {
		t.Errorf("Google does not rotate, but RefreshToken = set")
	}

	g.SetRotate(true)
	g.SetRefreshTokenExpiresIn(7 * 24 * time.Hour)
	tok, err = e.Refresh(context.Background(), client, rt, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.RefreshToken != g.CurrentRefreshToken(rt) {
		t.Error("rotated refresh token not reported")
	}
	if tok.RefreshTokenExpiresIn != 7*24*time.Hour {
		t.Errorf("RefreshTokenExpiresIn = %v", tok.RefreshTokenExpiresIn)
	}
}

func TestRefreshFailures(t *testing.T) {
	g, e := setup(t)
	g.AddClient("deleted.apps", "deleted-client-secret")
	g.DeleteClient("deleted.apps")
	g.AddClient("other.apps", "other-client-secret")
	now := time.Now()
	for _, tc := range []struct {
		name    string
		prepare func() (credentials.Client, string)
		kind    tokenerr.Kind
		code    string
	}{
		{"revoked refresh token", func() (credentials.Client, string) {
			rt := g.NewRefreshToken(client.ID)
			g.RevokeRefreshToken(rt)
			return client, rt
		}, tokenerr.InvalidGrant, "invalid_grant"},
		{"unknown refresh token", func() (credentials.Client, string) { return client, "1//nope" }, tokenerr.InvalidGrant, "invalid_grant"},
		{"wrong client secret", func() (credentials.Client, string) {
			return credentials.Client{ID: client.ID, Secret: "wrong"}, g.NewRefreshToken(client.ID)
		}, tokenerr.InvalidClient, "invalid_client"},
		{"unknown client", func() (credentials.Client, string) {
			return credentials.Client{ID: "nope.apps", Secret: "x"}, g.NewRefreshToken(client.ID)
		}, tokenerr.InvalidClient, "invalid_client"},
		{"deleted client", func() (credentials.Client, string) {
			return credentials.Client{ID: "deleted.apps", Secret: "deleted-client-secret"}, g.NewRefreshToken("deleted.apps")
		}, tokenerr.InvalidClient, "deleted_client"},
		{"token of another client", func() (credentials.Client, string) {
			return credentials.Client{ID: "other.apps", Secret: "other-client-secret"}, g.NewRefreshToken(client.ID)
		}, tokenerr.InvalidClient, "unauthorized_client"},
		{"503", func() (credentials.Client, string) {
			g.FailNext(1, fakegoogle.Failure{Status: 503})
			return client, g.NewRefreshToken(client.ID)
		}, tokenerr.Transient, "internal_failure"},
		{"200 with malformed JSON", func() (credentials.Client, string) {
			g.FailNext(1, fakegoogle.Failure{Status: 200, Body: `{"access_token": "ya29`})
			return client, g.NewRefreshToken(client.ID)
		}, tokenerr.Transient, ""},
		{"200 without access_token", func() (credentials.Client, string) {
			g.FailNext(1, fakegoogle.Failure{Status: 200, Body: `{"expires_in": 3599, "token_type": "Bearer"}`})
			return client, g.NewRefreshToken(client.ID)
		}, tokenerr.Transient, ""},
		{"200 without expires_in", func() (credentials.Client, string) {
			g.FailNext(1, fakegoogle.Failure{Status: 200, Body: `{"access_token": "ya29.x", "token_type": "Bearer"}`})
			return client, g.NewRefreshToken(client.ID)
		}, tokenerr.Transient, ""},
		{"200 with negative expires_in", func() (credentials.Client, string) {
			g.FailNext(1, fakegoogle.Failure{Status: 200, Body: `{"access_token": "ya29.x", "token_type": "Bearer", "expires_in": -5}`})
			return client, g.NewRefreshToken(client.ID)
		}, tokenerr.Transient, ""},
		{"200 with ten-year expires_in", func() (credentials.Client, string) {
			g.FailNext(1, fakegoogle.Failure{Status: 200, Body: `{"access_token": "ya29.x", "token_type": "Bearer", "expires_in": 315360000}`})
			return client, g.NewRefreshToken(client.ID)
		}, tokenerr.Transient, ""},
		{"200 with MAC token_type", func() (credentials.Client, string) {
			g.FailNext(1, fakegoogle.Failure{Status: 200, Body: `{"access_token": "ya29.x", "token_type": "mac", "expires_in": 3599}`})
			return client, g.NewRefreshToken(client.ID)
		}, tokenerr.Transient, ""},
		{"hanging endpoint times out", func() (credentials.Client, string) {
			g.FailNext(1, fakegoogle.Failure{Hang: true})
			return client, g.NewRefreshToken(client.ID)
		}, tokenerr.Transient, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rt := tc.prepare()
			tok, err := e.Refresh(context.Background(), c, rt, nil, now)
			if err == nil {
				t.Fatalf("want error, got token of type %s", tok.TokenType)
			}
			f := tokenerr.Classify(err, now)
			if f.Kind != tc.kind || f.Code != tc.code {
				t.Errorf("classified as %v/%q, want %v/%q (%s)", f.Kind, f.Code, tc.kind, tc.code, f.Summary())
			}
			for _, secret := range []string{c.Secret, rt} {
				if strings.Contains(f.Summary(), secret) || strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %s", f.Summary())
				}
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	g, e := setup(t)
	rt := g.NewRefreshToken(client.ID)
	if err := e.Revoke(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	if !g.Revoked(rt) {
		t.Fatal("refresh token not revoked at the server")
	}
	err := e.Revoke(context.Background(), rt)
	var re *tokenclient.RevokeError
	if !errors.As(err, &re) || !re.AlreadyInvalid() || re.Temporary() {
		t.Errorf("second revoke: %v, want an already-invalid 400", err)
	}
	e.RevokeURL = "http://127.0.0.1:1/revoke"
	if err := e.Revoke(context.Background(), rt); !errors.As(err, &re) || !re.Temporary() {
		t.Errorf("unreachable endpoint: %v, want temporary", err)
	}
}

func TestValidateURL(t *testing.T) {
	for url, ok := range map[string]bool{
		googleapi.TokenURL:               true,
		"http://127.0.0.1:8080/token":    true,
		"http://localhost:8080/token":    true,
		"http://[::1]:8080/token":        true,
		"http://oauth2.googleapis.com/x": false,
		"http://10.0.0.1/token":          false,
		"ftp://127.0.0.1/token":          false,
		"not a url":                      false,
		"https://":                       false,
	} {
		if err := tokenclient.ValidateURL(url); (err == nil) != ok {
			t.Errorf("ValidateURL(%q) = %v, want ok=%v", url, err, ok)
		}
	}
}

// TestRefreshScope: a refresh with scopes sends them as `scope` (RFC 6749 section 6), so the
// token carries only those; a superset of what the refresh token was granted is refused with
// invalid_scope, classified as before (Rejected); without scopes none is sent.
func TestRefreshScope(t *testing.T) {
	g, e := setup(t)
	const gmail, drive = "https://www.googleapis.com/auth/gmail.readonly", "https://www.googleapis.com/auth/drive.file"
	rt := g.NewRefreshToken(client.ID, gmail, drive, "openid", "email")
	now := time.Now()
	tok, err := e.Refresh(context.Background(), client, rt, []string{drive, "openid", "email"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tok.Scopes, " "); got != drive+" openid email" {
		t.Errorf("narrowed token carries %q", got)
	}
	ex := g.Exchanges()
	if ex[0].Scope != drive+" openid email" {
		t.Errorf("the request's scope = %q", ex[0].Scope)
	}
	_, err = e.Refresh(context.Background(), client, rt, []string{drive, "https://www.googleapis.com/auth/calendar"}, now)
	if err == nil {
		t.Error("a refresh asking for a scope never granted succeeded")
	} else if f := tokenerr.Classify(err, now); f.Kind != tokenerr.Rejected || f.Code != "invalid_scope" {
		t.Errorf("superset: %v classified %v %q, want Rejected invalid_scope", err, f.Kind, f.Code)
	}
	if _, err := e.Refresh(context.Background(), client, rt, nil, now); err != nil {
		t.Fatal(err)
	}
	if ex := g.Exchanges(); ex[len(ex)-1].Scope != "" {
		t.Errorf("a refresh without scopes sent scope %q", ex[len(ex)-1].Scope)
	}
}
