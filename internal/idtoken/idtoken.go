// Package idtoken reads the account an OpenID Connect ID token names.
//
// The ID tokens read here come straight from Google's token endpoint over TLS, in the same
// response as the access token; Google's OpenID Connect guide says such a token need not have
// its signature checked ("obtain user information from the ID token"). Nothing here is used to
// authenticate a caller: tokens that arrive from anyone else (security events) are verified
// elsewhere.
package idtoken

import (
	"errors"
	"fmt"
	"net/mail"

	"github.com/golang-jwt/jwt/v5"
)

// Account is the Google account an ID token names.
type Account struct {
	Email string
	Sub   string
	// EmailVerified is Google's email_verified claim.
	EmailVerified bool
}

// maxLen bounds what is parsed: Google's ID tokens are about 1 KiB.
const maxLen = 16 << 10

type claims struct {
	jwt.RegisteredClaims
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"` // Google has sent both true and "true"
}

// Parse returns the account in raw, an ID token from the token endpoint. It checks the shape
// (a JWT with a non-empty sub, a plausible email when present), not the signature.
func Parse(raw string) (Account, error) {
	if raw == "" {
		return Account{}, errors.New("no id_token in the token response")
	}
	if len(raw) > maxLen {
		return Account{}, fmt.Errorf("id_token is %d bytes, over the %d-byte limit", len(raw), maxLen)
	}
	var c claims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err != nil {
		// The jwt error names the part that failed, never the token's content.
		return Account{}, fmt.Errorf("id_token is not a JWT: %w", err)
	}
	if c.Subject == "" || len(c.Subject) > 255 {
		return Account{}, errors.New("id_token has no usable sub claim")
	}
	a := Account{Sub: c.Subject}
	if c.Email != "" {
		if len(c.Email) > 254 {
			return Account{}, errors.New("id_token email claim is too long")
		}
		if _, err := mail.ParseAddress(c.Email); err != nil {
			return Account{}, errors.New("id_token email claim is not an email address")
		}
		a.Email = c.Email
	}
	switch v := c.EmailVerified.(type) {
	case bool:
		a.EmailVerified = v
	case string:
		a.EmailVerified = v == "true"
	}
	return a, nil
}
