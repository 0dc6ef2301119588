package tokenclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

func TestTokeninfo(t *testing.T) {
	g, e := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		scopes    []string
		wantEmail bool
	}{{"email scope: sub and email", []string{"x", fakegoogle.ScopeEmail}, true}, {"no email scope: sub only", []string{"x"}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			rt := g.NewRefreshToken(client.ID, tc.scopes...)
			tok, err := e.Refresh(ctx, client, rt, nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			a, err := e.Tokeninfo(ctx, tok.AccessToken)
			want := g.AccountOf(rt)
			if err != nil || a.Sub != want.Sub || (a.Email == want.Email) != tc.wantEmail {
				t.Errorf("Tokeninfo = %+v, %v; want sub %s, email only with the email scope", a, err, want.Sub)
			}
		})
	}
}

func TestTokeninfoInvalidTokenNamesNoToken(t *testing.T) {
	_, e := setup(t)
	bad := "ya29.not-a-valid-token-0123456789"
	_, err := e.Tokeninfo(context.Background(), bad)
	if err == nil {
		t.Fatal("an invalid access token was accepted")
	}
	if strings.Contains(err.Error(), bad[:12]) {
		t.Errorf("the error quotes the token: %v", err)
	}
}
