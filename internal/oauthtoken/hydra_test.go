package oauthtoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
	"github.com/grantkeeper/grantkeeper/test/framework/hydra"
)

// The redirect URI is never opened: hydra.Authorize stops at the redirect to it.
const redirectURI = "http://127.0.0.1:9/callback"

// TestAgainstHydra runs the token client against a real OAuth 2.0 server: every auth
// method through code exchange, refresh with rotation (the rotated-out token refused),
// down-scoping, client credentials, RFC 7009 revocation and consent revocation.
func TestAgainstHydra(t *testing.T) {
	s := hydra.New(t, hydra.Options{AccessTokenTTL: 10 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := &Endpoint{TokenURL: s.TokenURL(), RevocationURL: s.RevokeURL(), HTTP: tokenclient.NewHTTPClient(10 * time.Second)}

	rsaSigner := rsaKey(t)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecPriv)
	ecSigner, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), "ec-1")
	if err != nil {
		t.Fatal(err)
	}

	// register makes a user client of each kind at Hydra and the Client that uses it.
	register := func(t *testing.T, method oauthv1alpha1.TokenEndpointAuthMethod, key *SigningKey, grantTypes []string, scopes ...string) Client {
		t.Helper()
		var hc hydra.Client
		var err error
		switch method {
		case oauthv1alpha1.AuthPrivateKeyJWT:
			spec := hydra.ClientSpec{GrantTypes: grantTypes, Scope: strings.Join(scopes, " "), Audience: []string{"https://api.example.com"}}
			if slices.Contains(grantTypes, "authorization_code") {
				spec.RedirectURIs = []string{redirectURI}
				spec.Scope = strings.Join(append([]string{"openid", "offline_access"}, scopes...), " ")
			}
			hc, err = s.Admin.PrivateKeyJWTClient(ctx, spec, key.Signer, key.KeyID, key.Method.Alg())
		case oauthv1alpha1.AuthNone:
			hc, err = s.Admin.PublicClient(ctx, redirectURI, scopes...)
		default:
			if slices.Contains(grantTypes, "client_credentials") {
				hc, err = s.Admin.ClientCredentialsClient(ctx, string(method), []string{"https://api.example.com"}, scopes...)
			} else {
				hc, err = s.Admin.UserClient(ctx, string(method), redirectURI, scopes...)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		return Client{ID: hc.ID, Secret: hc.Secret, Method: method, Key: key}
	}
	userGrant := []string{"authorization_code", "refresh_token"}

	// consent walks the code flow for c and exchanges the code with Exchange.
	consent := func(t *testing.T, c Client, scopes ...string) *Token {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		q, err := s.Authorize(ctx, hydra.AuthRequest{ClientID: c.ID, RedirectURI: redirectURI, Scopes: scopes,
			State: "st-" + oauth2.GenerateVerifier()[:16], CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier)})
		if err != nil {
			t.Fatal(err)
		}
		if q.Get("code") == "" {
			t.Fatalf("the authorization ended without a code: %v", q)
		}
		tok, err := e.Exchange(ctx, c, q.Get("code"), redirectURI, verifier, Params{}, time.Now())
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		return tok
	}

	refuses := func(t *testing.T, c Client, refreshToken string, want tokenerr.Kind) {
		t.Helper()
		_, err := e.Refresh(ctx, c, refreshToken, Params{}, time.Now())
		if err == nil {
			t.Fatalf("Hydra accepted the refresh token; want %v", want)
		}
		if f := tokenerr.Classify(err, time.Now()); f.Kind != want {
			t.Fatalf("%v classified %v, want %v", err, f.Kind, want)
		}
	}

	for _, tc := range []struct {
		name   string
		method oauthv1alpha1.TokenEndpointAuthMethod
		key    *SigningKey
	}{
		{"client_secret_basic", oauthv1alpha1.AuthClientSecretBasic, nil},
		{"client_secret_post", oauthv1alpha1.AuthClientSecretPost, nil},
		{"private_key_jwt RS256", oauthv1alpha1.AuthPrivateKeyJWT, rsaSigner},
		{"private_key_jwt ES256", oauthv1alpha1.AuthPrivateKeyJWT, ecSigner},
		{"none", oauthv1alpha1.AuthNone, nil},
	} {
		t.Run("rotation/"+tc.name, func(t *testing.T) {
			c := register(t, tc.method, tc.key, userGrant, "files.read", "files.write")
			first := consent(t, c, "offline_access", "files.read", "files.write")

			// Each refresh rotates the refresh token and hands the new one back.
			tok, err := e.Refresh(ctx, c, first.RefreshToken, Params{Scopes: []string{"offline_access", "files.read", "files.write"}}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken == "" || tok.RefreshToken == first.RefreshToken {
				t.Fatal("no rotated refresh token was handed back")
			}
			if tok.Expiry.Before(time.Now().Add(9*time.Minute)) || tok.Expiry.After(time.Now().Add(11*time.Minute)) {
				t.Errorf("expiry %v: want about 10 minutes from now (ttl.access_token)", tok.Expiry)
			}
			second := tok.RefreshToken
			tok, err = e.Refresh(ctx, c, second, Params{}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken == "" || tok.RefreshToken == second {
				t.Fatal("the second refresh did not rotate")
			}
			// The rotated-out token is refused as a revoked grant is (and Hydra, seeing
			// it reused, revokes the whole family: the newest token stops working too).
			refuses(t, c, first.RefreshToken, tokenerr.InvalidGrant)
			refuses(t, c, tok.RefreshToken, tokenerr.InvalidGrant)
		})
	}

	// Hydra (fosite v0.49) ignores scope on a refresh and grants the original scopes again.
	// What grantkeeper can rely on is that the answer's scope says what the token carries:
	// that is what finds scopes outside spec.scopes (ExcessScopes).
	t.Run("a refresh's scope answer says what the token carries", func(t *testing.T) {
		c := register(t, oauthv1alpha1.AuthClientSecretBasic, nil, userGrant, "files.read", "files.write")
		first := consent(t, c, "offline_access", "files.read", "files.write")
		tok, err := e.Refresh(ctx, c, first.RefreshToken, Params{Scopes: []string{"offline_access", "files.read"}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		in, err := s.Admin.Introspect(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		got, carried := slices.Sorted(slices.Values(tok.Scopes)), slices.Sorted(slices.Values(strings.Fields(in.Scope)))
		if !slices.Equal(got, carried) {
			t.Errorf("the answer's scope %v; the token carries %v", got, carried)
		}
		t.Logf("asked for [offline_access files.read]; Hydra granted %v", got)
	})

	t.Run("revocation RFC 7009", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			method oauthv1alpha1.TokenEndpointAuthMethod
			key    *SigningKey
		}{
			{"client_secret_basic", oauthv1alpha1.AuthClientSecretBasic, nil},
			{"client_secret_post", oauthv1alpha1.AuthClientSecretPost, nil},
			{"private_key_jwt", oauthv1alpha1.AuthPrivateKeyJWT, rsaSigner},
			{"none", oauthv1alpha1.AuthNone, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := register(t, tc.method, tc.key, userGrant)
				tok := consent(t, c, "offline_access")
				if err := e.Revoke(ctx, c, tok.RefreshToken, "refresh_token", time.Now()); err != nil {
					t.Fatal(err)
				}
				refuses(t, c, tok.RefreshToken, tokenerr.InvalidGrant)
				// Revoking a token the server no longer knows is a success (RFC 7009 section 2.2).
				if err := e.Revoke(ctx, c, tok.RefreshToken, "refresh_token", time.Now()); err != nil {
					t.Errorf("revoking again: %v", err)
				}
			})
		}
		t.Run("wrong client secret", func(t *testing.T) {
			c := register(t, oauthv1alpha1.AuthClientSecretBasic, nil, userGrant)
			tok := consent(t, c, "offline_access")
			bad := c
			bad.Secret = "not-the-secret"
			err := e.Revoke(ctx, bad, tok.RefreshToken, "refresh_token", time.Now())
			var re *RevokeError
			if !errors.As(err, &re) || re.Failure.Kind != tokenerr.InvalidClient || re.Temporary() {
				t.Fatalf("%v: want a permanent InvalidClient", err)
			}
			if strings.Contains(err.Error(), tok.RefreshToken) || strings.Contains(err.Error(), "not-the-secret") {
				t.Fatalf("the error leaks a secret: %v", err)
			}
			// The refresh token still works: a refused revocation revoked nothing.
			if _, err := e.Refresh(ctx, c, tok.RefreshToken, Params{}, time.Now()); err != nil {
				t.Fatalf("refresh after the refused revocation: %v", err)
			}
		})
	})

	t.Run("consent revoked at the provider", func(t *testing.T) {
		c := register(t, oauthv1alpha1.AuthClientSecretPost, nil, userGrant)
		tok := consent(t, c, "offline_access")
		if err := s.Admin.RevokeConsent(ctx, hydra.DefaultSubject, c.ID); err != nil {
			t.Fatal(err)
		}
		refuses(t, c, tok.RefreshToken, tokenerr.InvalidGrant)
	})

	t.Run("wrong client secret on refresh", func(t *testing.T) {
		c := register(t, oauthv1alpha1.AuthClientSecretBasic, nil, userGrant)
		tok := consent(t, c, "offline_access")
		c.Secret = "not-the-secret"
		refuses(t, c, tok.RefreshToken, tokenerr.InvalidClient)
	})

	t.Run("client credentials", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			method oauthv1alpha1.TokenEndpointAuthMethod
			key    *SigningKey
		}{
			{"client_secret_basic", oauthv1alpha1.AuthClientSecretBasic, nil},
			{"client_secret_post", oauthv1alpha1.AuthClientSecretPost, nil},
			{"private_key_jwt", oauthv1alpha1.AuthPrivateKeyJWT, ecSigner},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := register(t, tc.method, tc.key, []string{"client_credentials"}, "api.read", "api.write")
				tok, err := e.ClientCredentials(ctx, c, Params{Scopes: []string{"api.read"}, Audience: "https://api.example.com"}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if tok.RefreshToken != "" || tok.Expiry.Before(time.Now().Add(9*time.Minute)) {
					t.Errorf("token %+v: want no refresh token and about 10 minutes", tok)
				}
				in, err := s.Admin.Introspect(ctx, tok.AccessToken)
				if err != nil {
					t.Fatal(err)
				}
				if !in.Active || in.ClientID != c.ID || in.Scope != "api.read" || !slices.Contains(in.Audience, "https://api.example.com") {
					t.Errorf("introspection %+v: want active, for %s, scope api.read, audience https://api.example.com", in, c.ID)
				}
				// A scope the client was not registered for is refused.
				_, err = e.ClientCredentials(ctx, c, Params{Scopes: []string{"admin"}}, time.Now())
				if f := tokenerr.Classify(err, time.Now()); err == nil || f.Kind != tokenerr.Rejected || f.Code != "invalid_scope" {
					t.Errorf("an unregistered scope: %v (%v); want invalid_scope, Rejected", err, f.Kind)
				}
			})
		}
		t.Run("a private_key_jwt assertion signed by another key", func(t *testing.T) {
			c := register(t, oauthv1alpha1.AuthPrivateKeyJWT, rsaSigner, []string{"client_credentials"}, "api.read")
			c.Key = &SigningKey{Signer: rsaKey(t).Signer, Method: rsaSigner.Method, KeyID: rsaSigner.KeyID}
			_, err := e.ClientCredentials(ctx, c, Params{Scopes: []string{"api.read"}}, time.Now())
			if f := tokenerr.Classify(err, time.Now()); err == nil || f.Kind != tokenerr.InvalidClient {
				t.Fatalf("%v: want InvalidClient", err)
			}
		})
	})
}
