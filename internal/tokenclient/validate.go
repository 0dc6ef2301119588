package tokenclient

import (
	"time"

	"golang.org/x/oauth2"
)

// Validate is the check every token response passes before anything is written (a Bearer
// token, a lifetime within MaxLifetime, the refresh token only when rotated), for token
// clients of other providers (internal/oauthtoken) as for Google's.
func Validate(tok *oauth2.Token, refreshToken string, now time.Time) (*Token, error) {
	return validate(tok, refreshToken, now)
}
