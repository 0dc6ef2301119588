package tokenclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/grantkeeper/grantkeeper/internal/idtoken"
)

// TokeninfoURL is Google's tokeninfo endpoint beside a token endpoint: oauth2.googleapis.com
// serves both (and so does the fake Google server).
func TokeninfoURL(tokenURL string) string {
	return strings.TrimSuffix(tokenURL, "/token") + "/tokeninfo"
}

// Tokeninfo asks Google which account an access token acts for. The token goes in a POST
// body, never in a URL: Go's errors quote URLs, and errors are logged.
func (e *Endpoint) Tokeninfo(ctx context.Context, accessToken string) (idtoken.Account, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, TokeninfoURL(e.TokenURL), strings.NewReader(url.Values{"access_token": {accessToken}}.Encode()))
	if err != nil {
		return idtoken.Account{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return idtoken.Account{}, fmt.Errorf("tokeninfo: %w", errors.Unwrap(err))
	}
	defer func() { _ = resp.Body.Close() }()
	var info struct {
		Sub           string `json:"sub"`
		Email         string `json:"email"`
		EmailVerified string `json:"email_verified"`
	}
	if resp.StatusCode != http.StatusOK {
		return idtoken.Account{}, fmt.Errorf("tokeninfo answered HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&info); err != nil || info.Sub == "" {
		return idtoken.Account{}, errors.New("tokeninfo answered without a sub")
	}
	return idtoken.Account{Sub: info.Sub, Email: info.Email, EmailVerified: info.EmailVerified == "true"}, nil
}
