package oauthtoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

var now = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// recorder is a token endpoint that answers what the test says and keeps each request.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
	answer   func(w http.ResponseWriter, r *http.Request)
}

type recorded struct {
	form       url.Values
	user, pass string
	basic      bool
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	u, p, ok := r.BasicAuth()
	rc.mu.Lock()
	rc.requests = append(rc.requests, recorded{form: r.PostForm, user: u, pass: p, basic: ok})
	rc.mu.Unlock()
	rc.answer(w, r)
}

func (rc *recorder) last(t *testing.T) recorded {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.requests) == 0 {
		t.Fatal("no request reached the server")
	}
	return rc.requests[len(rc.requests)-1]
}

func jsonAnswer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

func endpoint(t *testing.T, rc *recorder) *Endpoint {
	t.Helper()
	s := httptest.NewServer(rc)
	t.Cleanup(s.Close)
	return &Endpoint{TokenURL: s.URL + "/token", RevocationURL: s.URL + "/revoke", HTTP: tokenclient.NewHTTPClient(5 * time.Second)}
}

func rsaKey(t *testing.T) *SigningKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := x509.MarshalPKCS8PrivateKey(k)
	sk, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b}), "key-1")
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

const okBody = `{"access_token":"at-1","token_type":"bearer","expires_in":3600,"scope":"read write","refresh_token":"rt-2"}`

// TestAuthMethodsOnTheWire: what each auth method puts in the request, and that the
// grant's scope, resource and audience go with it.
func TestAuthMethodsOnTheWire(t *testing.T) {
	key := rsaKey(t)
	p := Params{Scopes: []string{"read", "write"}, Resources: []string{"https://api.example.com/", "https://files.example.com/"}, Audience: "https://api.example.com"}
	for _, tc := range []struct {
		client Client
		check  func(t *testing.T, r recorded, tokenURL string)
	}{
		{Client{ID: "c 1", Secret: "s&2"}, func(t *testing.T, r recorded, _ string) {
			// RFC 6749 section 2.3.1: form-encoded, then Basic.
			if !r.basic || r.user != "c+1" || r.pass != "s%262" || r.form.Has("client_secret") {
				t.Errorf("client_secret_basic: basic %v user %q pass %q, form %v", r.basic, r.user, r.pass, r.form)
			}
		}},
		{Client{ID: "c1", Secret: "s2", Method: oauthv1alpha1.AuthClientSecretPost}, func(t *testing.T, r recorded, _ string) {
			if r.basic || r.form.Get("client_id") != "c1" || r.form.Get("client_secret") != "s2" {
				t.Errorf("client_secret_post: basic %v, form %v", r.basic, r.form)
			}
		}},
		{Client{ID: "c1", Method: oauthv1alpha1.AuthNone}, func(t *testing.T, r recorded, _ string) {
			if r.basic || r.form.Get("client_id") != "c1" || r.form.Has("client_secret") || r.form.Has("client_assertion") {
				t.Errorf("none: basic %v, form %v", r.basic, r.form)
			}
		}},
		{Client{ID: "c1", Method: oauthv1alpha1.AuthPrivateKeyJWT, Key: key}, func(t *testing.T, r recorded, tokenURL string) {
			if r.basic || r.form.Has("client_secret") || r.form.Get("client_assertion_type") != ClientAssertionType {
				t.Fatalf("private_key_jwt: basic %v, form %v", r.basic, r.form)
			}
			claims := jwt.MapClaims{}
			tok, err := jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithValidMethods([]string{"RS256"})).
				ParseWithClaims(r.form.Get("client_assertion"), claims, func(*jwt.Token) (any, error) { return key.Signer.Public(), nil })
			if err != nil {
				t.Fatalf("the client assertion does not verify with the client's public key at the injected time: %v", err)
			}
			if tok.Header["kid"] != "key-1" || claims["iss"] != "c1" || claims["sub"] != "c1" || claims["jti"] == "" {
				t.Errorf("assertion header %v claims %v", tok.Header, claims)
			}
			if aud, _ := claims.GetAudience(); !slices.Equal(aud, []string{tokenURL}) {
				t.Errorf("assertion aud %v, want the token URL %s", aud, tokenURL)
			}
			if exp, _ := claims.GetExpirationTime(); exp == nil || exp.Sub(now) > 10*time.Minute || exp.Before(now) {
				t.Errorf("assertion exp %v: want shortly after the injected now %v", exp, now)
			}
		}},
	} {
		t.Run(string(tc.client.method()), func(t *testing.T) {
			rc := &recorder{answer: jsonAnswer(200, okBody)}
			e := endpoint(t, rc)
			tok, err := e.Refresh(context.Background(), tc.client, "rt-1", p, now)
			if err != nil {
				t.Fatal(err)
			}
			r := rc.last(t)
			tc.check(t, r, e.TokenURL)
			if r.form.Get("grant_type") != "refresh_token" || r.form.Get("refresh_token") != "rt-1" || r.form.Get("scope") != "read write" ||
				!slices.Equal(r.form["resource"], p.Resources) || r.form.Get("audience") != p.Audience {
				t.Errorf("refresh form %v: want grant_type, refresh_token, scope, both resources, audience", r.form)
			}
			if tok.AccessToken != "at-1" || tok.RefreshToken != "rt-2" || !tok.Expiry.Equal(now.Add(time.Hour)) || !slices.Equal(tok.Scopes, []string{"read", "write"}) {
				t.Errorf("token %+v: want at-1, the rotated rt-2, expiry from the injected clock, the scopes", tok)
			}

			// Client credentials: the same authentication, the grant's parameters.
			if tc.client.method() != oauthv1alpha1.AuthNone {
				tok, err := e.ClientCredentials(context.Background(), tc.client, p, now)
				if err != nil {
					t.Fatal(err)
				}
				r := rc.last(t)
				tc.check(t, r, e.TokenURL)
				if r.form.Get("grant_type") != "client_credentials" || r.form.Get("scope") != "read write" || !slices.Equal(r.form["resource"], p.Resources) || r.form.Get("audience") != p.Audience {
					t.Errorf("client credentials form %v", r.form)
				}
				if tok.RefreshToken != "" || !tok.Expiry.Equal(now.Add(time.Hour)) {
					t.Errorf("client credentials token %+v: want no refresh token, expiry from the injected clock", tok)
				}
			} else if _, err := e.ClientCredentials(context.Background(), tc.client, p, now); err == nil {
				t.Error("a public client obtained a client credentials token")
			}

			// Revocation: the same authentication, the token and its hint.
			if err := e.Revoke(context.Background(), tc.client, "rt-2", "refresh_token", now); err != nil {
				t.Fatal(err)
			}
			r = rc.last(t)
			tc.check(t, r, e.TokenURL)
			if r.form.Get("token") != "rt-2" || r.form.Get("token_type_hint") != "refresh_token" {
				t.Errorf("revocation form %v", r.form)
			}
		})
	}
}

// TestRotation: a refresh token in the answer is handed back only when it differs.
func TestRotation(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{okBody, "rt-2"},
		{`{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"rt-1"}`, ""},
		{`{"access_token":"a","token_type":"Bearer","expires_in":60}`, ""},
	} {
		e := endpoint(t, &recorder{answer: jsonAnswer(200, tc.body)})
		tok, err := e.Refresh(context.Background(), Client{ID: "c", Secret: "s"}, "rt-1", Params{}, now)
		if err != nil || tok.RefreshToken != tc.want {
			t.Errorf("%s: %+v, %v; want refresh token %q", tc.body, tok, err, tc.want)
		}
	}
}

// TestFaults: what the provider's failures mean, through tokenerr, for refresh, client
// credentials and revocation alike.
func TestFaults(t *testing.T) {
	type result struct {
		kind       tokenerr.Kind
		retryAfter time.Duration
		bad        bool // ErrBadResponse
	}
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter, *http.Request)
		want   result
	}{
		{"invalid_grant", jsonAnswer(400, `{"error":"invalid_grant","error_description":"The refresh token was revoked"}`), result{kind: tokenerr.InvalidGrant}},
		{"invalid_client", jsonAnswer(401, `{"error":"invalid_client"}`), result{kind: tokenerr.InvalidClient}},
		{"unauthorized_client", jsonAnswer(400, `{"error":"unauthorized_client"}`), result{kind: tokenerr.InvalidClient}},
		{"invalid_scope", jsonAnswer(400, `{"error":"invalid_scope"}`), result{kind: tokenerr.Rejected}},
		{"invalid_request", jsonAnswer(400, `{"error":"invalid_request"}`), result{kind: tokenerr.Rejected}},
		{"500 HTML", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "<html>oops</html>", 500) }, result{kind: tokenerr.Transient}},
		{"502", jsonAnswer(502, ``), result{kind: tokenerr.Transient}},
		{"503 with Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
		}, result{kind: tokenerr.Transient, retryAfter: 7 * time.Second}},
		{"429 with Retry-After date", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
			w.WriteHeader(429)
		}, result{kind: tokenerr.Transient, retryAfter: 90 * time.Second}},
		{"temporarily_unavailable", jsonAnswer(400, `{"error":"temporarily_unavailable"}`), result{kind: tokenerr.Transient}},
		{"malformed 200", jsonAnswer(200, `{"access_token":`), result{kind: tokenerr.Transient}},
		{"200 HTML", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>login</html>")
		}, result{kind: tokenerr.Transient}},
		// x/oauth2 refuses it itself.
		{"no access_token", jsonAnswer(200, `{"token_type":"Bearer","expires_in":60}`), result{kind: tokenerr.Transient}},
		{"token_type mac", jsonAnswer(200, `{"access_token":"a","token_type":"mac","expires_in":60}`), result{kind: tokenerr.Transient, bad: true}},
		{"no expires_in", jsonAnswer(200, `{"access_token":"a","token_type":"Bearer"}`), result{kind: tokenerr.Transient, bad: true}},
		{"expires_in of ten years", jsonAnswer(200, `{"access_token":"a","token_type":"Bearer","expires_in":315360000}`), result{kind: tokenerr.Transient, bad: true}},
		{"oversized body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"%s","token_type":"Bearer","expires_in":60}`, strings.Repeat("a", 2<<20))
		}, result{kind: tokenerr.Transient}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := endpoint(t, &recorder{answer: tc.answer})
			c := Client{ID: "c", Secret: "super-secret-value"}
			for op, call := range map[string]func() error{
				"refresh": func() error {
					_, err := e.Refresh(context.Background(), c, "rt-secret-value", Params{}, now)
					return err
				},
				"client credentials": func() error {
					_, err := e.ClientCredentials(context.Background(), c, Params{}, now)
					return err
				},
			} {
				err := call()
				if err == nil {
					t.Fatalf("%s: no error", op)
				}
				f := tokenerr.Classify(err, now)
				if f.Kind != tc.want.kind || f.RetryAfter != tc.want.retryAfter || errors.Is(err, ErrBadResponse) != tc.want.bad {
					t.Errorf("%s: %v classified %v (Retry-After %v, bad response %v); want %v, %v, %v", op, err, f.Kind, f.RetryAfter, errors.Is(err, ErrBadResponse), tc.want.kind, tc.want.retryAfter, tc.want.bad)
				}
				if s := f.Redact("super-secret-value", "rt-secret-value").Summary(); strings.Contains(s, "secret-value") {
					t.Errorf("%s: summary leaks a secret: %s", op, s)
				}
			}
			if tc.want.bad || tc.name == "malformed 200" || tc.name == "200 HTML" || tc.name == "oversized body" || tc.name == "no access_token" {
				return // a 200 revokes
			}
			err := e.Revoke(context.Background(), c, "rt-secret-value", "refresh_token", now)
			var re *RevokeError
			if !errors.As(err, &re) || re.Failure.Kind != tc.want.kind || re.Failure.RetryAfter != tc.want.retryAfter || re.Temporary() != (tc.want.kind == tokenerr.Transient) {
				t.Errorf("revoke: %v; want kind %v, Retry-After %v", err, tc.want.kind, tc.want.retryAfter)
			}
		})
	}
}

func TestSlowProvider(t *testing.T) {
	release := make(chan struct{})
	rc := &recorder{answer: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}}
	e := endpoint(t, rc)
	defer close(release)
	e.HTTP = tokenclient.NewHTTPClient(300 * time.Millisecond)
	start := time.Now()
	_, err := e.Refresh(context.Background(), Client{ID: "c", Secret: "s"}, "rt", Params{}, now)
	if err == nil || tokenerr.Classify(err, now).Kind != tokenerr.Transient {
		t.Fatalf("%v: want a transient failure", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a hung provider held the refresh for %s with a 300ms timeout", d)
	}
}

func TestNoRevocationEndpoint(t *testing.T) {
	e := &Endpoint{TokenURL: "https://idp.example.com/token"}
	if err := e.Revoke(context.Background(), Client{ID: "c", Secret: "s"}, "rt", "refresh_token", now); !errors.Is(err, ErrNoRevocationEndpoint) {
		t.Fatalf("%v, want ErrNoRevocationEndpoint", err)
	}
}

func TestParsePrivateKey(t *testing.T) {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	pkcs8 := func(k any) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})
	}
	sec1 := func(k *ecdsa.PrivateKey) []byte {
		b, _ := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})
	}
	for _, tc := range []struct {
		name string
		pem  []byte
		alg  string
		err  string
	}{
		{"RSA PKCS #8", pkcs8(rsa2048), "RS256", ""},
		{"RSA PKCS #1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsa2048)}), "RS256", ""},
		{"P-256 PKCS #8", pkcs8(p256), "ES256", ""},
		{"P-256 SEC 1", sec1(p256), "ES256", ""},
		{"P-384", sec1(p384), "ES384", ""},
		{"RSA 1024", pkcs8(rsa1024), "", "at least 2048"},
		{"P-224", sec1(p224), "", "not supported"},
		{"not PEM", []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), "", "no PEM block"},
		{"a certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), "", "not a private key"},
		{"garbage in the block", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secret-garbage")}), "", "does not parse"},
	} {
		k, err := ParsePrivateKey(tc.pem, "kid")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret-garbage") {
				t.Errorf("%s: the error holds key material: %v", tc.name, err)
			}
			continue
		}
		if err != nil || k.Method.Alg() != tc.alg {
			t.Errorf("%s: %v, %v; want %s", tc.name, k, err, tc.alg)
			continue
		}
		a, err := k.Assertion("c", "https://idp.example.com/token", now)
		if err != nil {
			t.Errorf("%s: signing: %v", tc.name, err)
			continue
		}
		if _, err := jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return now })).Parse(a, func(*jwt.Token) (any, error) { return k.Signer.Public(), nil }); err != nil {
			t.Errorf("%s: assertion does not verify: %v", tc.name, err)
		}
	}
}
