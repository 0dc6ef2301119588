package tokenclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

const (
	saEmail   = "reporter@fake-project.iam.gserviceaccount.com"
	analytics = "https://www.googleapis.com/auth/analytics.readonly"
)

func saKey(t *testing.T, g *fakegoogle.Server) (credentials.ServiceAccountKey, fakegoogle.ServiceAccountKey) {
	t.Helper()
	fk := g.NewServiceAccountKey(saEmail)
	k, p := credentials.ParseServiceAccountKey("sa", map[string][]byte{"credentials.json": fk.JSON}, "credentials.json")
	if p != nil {
		t.Fatal(p)
	}
	return k, fk
}

// TestAssertionClaims: the claims Google checks, with iat/exp from the given clock.
func TestAssertionClaims(t *testing.T) {
	g, _ := setup(t)
	k, fk := saKey(t, g)
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	a, err := tokenclient.Assertion(k, "https://oauth2.googleapis.com/token", []string{analytics, "openid"}, "analyst@example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(a, claims, func(*jwt.Token) (any, error) { return &k.PrivateKey.PublicKey, nil }, jwt.WithoutClaimsValidation())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Method.Alg() != "RS256" || tok.Header["kid"] != fk.ID {
		t.Errorf("header %v", tok.Header)
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if claims["iss"] != saEmail || claims["aud"] != "https://oauth2.googleapis.com/token" || claims["scope"] != analytics+" openid" || claims["sub"] != "analyst@example.com" {
		t.Errorf("claims %v", claims)
	}
	if iat.After(now) || now.Sub(iat.Time) > time.Minute || exp.Sub(iat.Time) != time.Hour {
		t.Errorf("iat %v exp %v: want iat at most a minute before the injected now %v, exp an hour later", iat, exp, now)
	}
	own, _ := tokenclient.Assertion(k, "u", []string{analytics}, "", now)
	if c := (jwt.MapClaims{}); func() bool {
		_, _ = jwt.ParseWithClaims(own, c, func(*jwt.Token) (any, error) { return &k.PrivateKey.PublicKey, nil }, jwt.WithoutClaimsValidation())
		_, has := c["sub"]
		return has
	}() {
		t.Error("sub set without a subject")
	}
}

// TestServiceAccountToken: the exchange against the fake, which checks assertions as Google
// does, and how each refusal classifies.
func TestServiceAccountToken(t *testing.T) {
	g, e := setup(t)
	k, fk := saKey(t, g)
	g.SetLifetime(3599 * time.Second)
	g.AllowDelegation(saEmail, "analyst@example.com", analytics)
	g.AddUser("stranger@example.com")
	ctx := context.Background()
	now := time.Now()

	tok, err := e.ServiceAccountToken(ctx, k, []string{analytics}, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if !g.AccessTokenValid(tok.AccessToken) || tok.RefreshToken != "" || strings.Join(tok.Scopes, " ") != analytics {
		t.Errorf("token: valid %v, scopes %v", g.AccessTokenValid(tok.AccessToken), tok.Scopes)
	}
	if want := now.Add(3599 * time.Second).Truncate(time.Second); !tok.Expiry.Equal(want) {
		t.Errorf("Expiry %v, want %v", tok.Expiry, want)
	}
	if _, err := e.ServiceAccountToken(ctx, k, []string{analytics}, "analyst@example.com", now); err != nil {
		t.Errorf("delegation: %v", err)
	}

	for _, tc := range []struct {
		name    string
		subject string
		scopes  []string
		now     time.Time
		kind    tokenerr.Kind
		code    string
	}{
		{"not delegated", "stranger@example.com", []string{analytics}, now, tokenerr.DelegationDenied, "unauthorized_client"},
		{"bad subject", "nobody@example.com", []string{analytics}, now, tokenerr.InvalidGrant, "invalid_grant"},
		{"clock an hour behind", "", []string{analytics}, now.Add(-2 * time.Hour), tokenerr.InvalidGrant, "invalid_grant"},
		{"no scopes", "", nil, now, tokenerr.Rejected, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ServiceAccountToken(ctx, k, tc.scopes, tc.subject, tc.now)
			if err == nil {
				t.Fatal("accepted")
			}
			f := tokenerr.Classify(err, now).ForServiceAccount()
			if f.Kind != tc.kind || f.Code != tc.code || f.Description == "" {
				t.Fatalf("classified %+v, want %s %s with Google's description", f, tc.kind, tc.code)
			}
		})
	}

	g.DeleteServiceAccountKey(fk.ID)
	_, err = e.ServiceAccountToken(ctx, k, []string{analytics}, "", now)
	if f := tokenerr.Classify(err, now).ForServiceAccount(); f.Kind != tokenerr.InvalidGrant || !strings.Contains(f.Summary(), "Invalid JWT Signature") {
		t.Errorf("deleted key: %+v", f)
	}
}
