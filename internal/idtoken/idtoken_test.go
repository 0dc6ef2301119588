package idtoken

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func sign(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		want    Account
		wantErr string
	}{
		{"email and sub", sign(t, jwt.MapClaims{"sub": "1234", "email": "ana@example.com", "email_verified": true}),
			Account{Email: "ana@example.com", Sub: "1234", EmailVerified: true}, ""},
		{"verified as string", sign(t, jwt.MapClaims{"sub": "1", "email": "a@b.c", "email_verified": "true"}),
			Account{Email: "a@b.c", Sub: "1", EmailVerified: true}, ""},
		{"sub only (no email scope)", sign(t, jwt.MapClaims{"sub": "9"}), Account{Sub: "9"}, ""},
		{"empty", "", Account{}, "no id_token"},
		{"not a jwt", "abc.def", Account{}, "not a JWT"},
		{"no sub", sign(t, jwt.MapClaims{"email": "a@b.c"}), Account{}, "sub"},
		{"bad email", sign(t, jwt.MapClaims{"sub": "1", "email": "not an email"}), Account{}, "not an email"},
		{"oversized", strings.Repeat("a", maxLen+1), Account{}, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
