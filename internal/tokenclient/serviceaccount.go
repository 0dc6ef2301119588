package tokenclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// JWTBearerGrantType is the grant type of a service account's assertion (RFC 7523).
const JWTBearerGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// assertionBackdate dates iat back a little, as x/oauth2/jwt does: Google refuses an
// assertion issued in its future, and our clock may run ahead of Google's.
const assertionBackdate = 10 * time.Second

// Assertion is the signed JWT a service account presents: RS256 with the key (kid =
// private_key_id), iss = the service account, aud = the token URL, scope, sub = the
// delegated user when set, iat/exp one hour apart from now (the injected clock).
//
// x/oauth2/jwt signs the same claims but reads iat and exp from the wall clock, which the
// reconciler's injected clock must control; golang-jwt signs with our times.
func Assertion(key credentials.ServiceAccountKey, tokenURL string, scopes []string, subject string, now time.Time) (string, error) {
	iat := now.Add(-assertionBackdate)
	claims := jwt.MapClaims{
		"iss":   key.Email,
		"aud":   tokenURL,
		"scope": strings.Join(scopes, " "),
		"iat":   iat.Unix(),
		"exp":   iat.Add(time.Hour).Unix(),
	}
	if subject != "" {
		claims["sub"] = subject
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if key.PrivateKeyID != "" {
		t.Header["kid"] = key.PrivateKeyID
	}
	s, err := t.SignedString(key.PrivateKey)
	if err != nil {
		// The error never holds key material (golang-jwt reports the key's type only).
		return "", fmt.Errorf("signing the service account's assertion: %w", err)
	}
	return s, nil
}

// ServiceAccountToken trades a service account's signed assertion for an access token
// (for subject through domain-wide delegation when set). Failures are *oauth2.RetrieveError
// like Refresh's, so tokenerr classifies both alike. Google does not list the scopes of a
// service account's token: it issues the requested ones or refuses, so those are reported.
func (e *Endpoint) ServiceAccountToken(ctx context.Context, key credentials.ServiceAccountKey, scopes []string, subject string, now time.Time) (*Token, error) {
	assertion, err := Assertion(key, e.TokenURL, scopes, subject, now)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {JWTBearerGrantType}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("service account token request: %w", redactURLError(err, assertion))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("service account token request: reading the answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		re := &oauth2.RetrieveError{Response: resp, Body: body}
		var eb struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &eb) == nil {
			re.ErrorCode, re.ErrorDescription = eb.Error, eb.Description
		}
		return nil, re
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	var raw map[string]any
	if json.Unmarshal(body, &tr) != nil || json.Unmarshal(body, &raw) != nil {
		return nil, fmt.Errorf("%w: the body is not a JSON object", ErrBadResponse)
	}
	// expires_in is a number, but some servers send a string (x/oauth2 accepts both).
	secs, _ := strconv.ParseInt(strings.Trim(string(tr.ExpiresIn), `"`), 10, 64)
	tok, err := validate((&oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, ExpiresIn: secs}).WithExtra(raw), "", now)
	if err != nil {
		return nil, err
	}
	tok.RefreshToken, tok.RefreshTokenExpiresIn = "", 0 // a service account has none
	if len(tok.Scopes) == 0 {
		tok.Scopes = append([]string(nil), scopes...)
	}
	return tok, nil
}

// redactURLError keeps a transport error from echoing the request body (it does not today,
// but *url.Error wraps whatever the transport returns).
func redactURLError(err error, assertion string) error {
	if strings.Contains(err.Error(), assertion) {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), assertion, "[redacted]"))
	}
	return err
}
