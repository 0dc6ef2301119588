package fakegoogle

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	saEmail   = "reporter@fake-project.iam.gserviceaccount.com"
	analytics = "https://www.googleapis.com/auth/analytics.readonly"
)

func privateKey(t *testing.T, k ServiceAccountKey) *rsa.PrivateKey {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(k.JSON, &m); err != nil {
		t.Fatal(err)
	}
	if m["type"] != "service_account" || m["client_email"] != saEmail || m["private_key_id"] != k.ID {
		t.Fatalf("key JSON lacks the console's fields: type %q email %q", m["type"], m["client_email"])
	}
	b, _ := pem.Decode([]byte(m["private_key"]))
	pk, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pk.(*rsa.PrivateKey)
}

// exchange posts an assertion and returns the status and the OAuth error code ("" on success).
func exchange(t *testing.T, s *Server, assertion string) (int, string, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.TokenURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	code, _ := body["error"].(string)
	return resp.StatusCode, code, body
}

// TestServiceAccountAssertions: the fake checks an assertion the way Google does, and a
// test can tell each refusal by Google's error code.
func TestServiceAccountAssertions(t *testing.T) {
	s := New()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := s.NewServiceAccountKey(saEmail)
	pk := privateKey(t, key)
	other := s.NewServiceAccountKey("other@fake-project.iam.gserviceaccount.com")
	deleted := s.NewServiceAccountKey(saEmail)
	s.DeleteServiceAccountKey(deleted.ID)
	s.AllowDelegation(saEmail, "analyst@example.com", analytics)
	s.AddUser("stranger@example.com")
	foreign, _ := rsa.GenerateKey(rand.Reader, 2048)

	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": saEmail, "aud": s.TokenURL(), "scope": analytics, "iat": now.Add(-10 * time.Second).Unix(), "exp": now.Add(50 * time.Minute).Unix()}
	}
	sign := func(claims jwt.MapClaims, kid string, with *rsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = kid
		a, err := tok.SignedString(with)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := good()
		edit(c)
		return c
	}
	for _, tc := range []struct {
		name      string
		assertion string
		status    int
		code      string
	}{
		{"own access", sign(good(), key.ID, pk), 200, ""},
		{"delegated to an allowed user", sign(with(func(c jwt.MapClaims) { c["sub"] = "analyst@example.com" }), key.ID, pk), 200, ""},
		{"signed by another key", sign(good(), key.ID, foreign), 400, "invalid_grant"},
		{"unknown kid", sign(good(), "0000", pk), 400, "invalid_grant"},
		{"deleted key", sign(good(), deleted.ID, privateKey(t, deleted)), 400, "invalid_grant"},
		{"another account's key", sign(good(), other.ID, pk), 400, "invalid_grant"},
		{"HS256", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, good())
			tok.Header["kid"] = key.ID
			a, _ := tok.SignedString([]byte("secret"))
			return a
		}(), 400, "invalid_grant"},
		{"wrong audience", sign(with(func(c jwt.MapClaims) { c["aud"] = "https://oauth2.googleapis.com/token" }), key.ID, pk), 400, "invalid_grant"},
		{"issued in the future beyond the skew", sign(with(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(AssertionSkew+time.Minute).Unix(), now.Add(AssertionSkew+30*time.Minute).Unix()
		}), key.ID, pk), 400, "invalid_grant"},
		{"expired", sign(with(func(c jwt.MapClaims) { c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix() }), key.ID, pk), 400, "invalid_grant"},
		{"longer than an hour", sign(with(func(c jwt.MapClaims) { c["exp"] = now.Add(2 * time.Hour).Unix() }), key.ID, pk), 400, "invalid_grant"},
		{"no iat", sign(with(func(c jwt.MapClaims) { delete(c, "iat") }), key.ID, pk), 400, "invalid_grant"},
		{"no scope", sign(with(func(c jwt.MapClaims) { delete(c, "scope") }), key.ID, pk), 400, "invalid_scope"},
		{"subject not in the domain", sign(with(func(c jwt.MapClaims) { c["sub"] = "nobody@example.com" }), key.ID, pk), 400, "invalid_grant"},
		{"subject not delegated", sign(with(func(c jwt.MapClaims) { c["sub"] = "stranger@example.com" }), key.ID, pk), 401, "unauthorized_client"},
		{"scope not delegated", sign(with(func(c jwt.MapClaims) {
			c["sub"], c["scope"] = "analyst@example.com", analytics+" https://www.googleapis.com/auth/drive"
		}), key.ID, pk), 401, "unauthorized_client"},
		{"garbage", "not.a.jwt", 400, "invalid_grant"},
		{"no assertion", "", 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code, body := exchange(t, s, tc.assertion)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %q (%v), want %d %q", status, code, body["error_description"], tc.status, tc.code)
			}
			if status == 200 {
				at, _ := body["access_token"].(string)
				if !s.AccessTokenValid(at) || body["token_type"] != "Bearer" || body["refresh_token"] != nil {
					t.Fatalf("token response %v", body)
				}
			}
		})
	}
	if n := s.ServiceAccountRequests(saEmail); n < 10 {
		t.Errorf("ServiceAccountRequests = %d", n)
	}
	if len(s.PrivateKeys()) != 3 {
		t.Errorf("PrivateKeys lists %d keys, want 3", len(s.PrivateKeys()))
	}
}
