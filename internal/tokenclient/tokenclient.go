// Package tokenclient talks to Google's OAuth 2.0 token and revocation endpoints: it trades a
// refresh token for an access token through golang.org/x/oauth2 and revokes refresh tokens.
// Tests point it at the fake in test/framework/fakegoogle; nothing else differs.
package tokenclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
)

// MaxLifetime bounds the lifetime we accept for an access token. Google's last about an
// hour; a response claiming years is broken, and trusting it would stop refreshes.
const MaxLifetime = 7 * 24 * time.Hour

// Endpoint is a token endpoint and a revocation endpoint reached with one HTTP client.
type Endpoint struct {
	TokenURL  string
	RevokeURL string
	HTTP      *http.Client
}

// NewHTTPClient returns a client with timeouts at every stage: x/oauth2's default client has
// none, and one hung connection would stall a grant's refresh forever.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			ForceAttemptHTTP2:     true,
		},
		// The token endpoint never redirects; following one could send credentials elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ValidateURL accepts https URLs, and http only for loopback hosts (local fakes and tests).
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q uses http to a non-loopback host; credentials would cross the network in clear text: use https", raw)
	default:
		return fmt.Errorf("%q: scheme must be https (or http to loopback)", raw)
	}
}

// Token is a validated result of a refresh.
type Token struct {
	AccessToken string
	TokenType   string // always "Bearer"
	Expiry      time.Time
	Scopes      []string
	// RefreshToken is set only when the server rotated it: a new value to persist at once.
	RefreshToken string
	// RefreshTokenExpiresIn is set when the server reported one (time-based access).
	RefreshTokenExpiresIn time.Duration
	// IDToken is the raw OpenID Connect ID token, present when the grant has the openid
	// scope (read it with internal/idtoken; it is not a secret to Google but is never logged).
	IDToken string
}

// ErrBadResponse marks a 200 response that cannot be used; it is treated as transient.
var ErrBadResponse = errors.New("token endpoint returned an unusable token")

// Refresh trades a refresh token for an access token. now is the injected clock's time: the
// expiry is computed from it and expires_in, not from x/oauth2's wall clock. scopes, when
// set, go in the request's `scope` (RFC 6749 section 6): Google then issues a token for
// exactly those, or refuses with invalid_scope when the refresh token was not granted them
// all; without it, the token carries everything the refresh token was granted.
func (e *Endpoint) Refresh(ctx context.Context, client credentials.Client, refreshToken string, scopes []string, now time.Time) (*Token, error) {
	conf := &oauth2.Config{
		ClientID:     client.ID,
		ClientSecret: client.Secret,
		// Google wants client credentials in the form body (as google.Endpoint sets).
		Endpoint: oauth2.Endpoint{TokenURL: e.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	hc := e.HTTP
	if len(scopes) > 0 {
		hc = withFormParam(e.HTTP, "scope", strings.Join(scopes, " "))
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, err
	}
	return validate(tok, refreshToken, now)
}

// validate checks a token response before anything is written: a token without a usable
// lifetime or of another type must never reach the derived Secret.
func validate(tok *oauth2.Token, refreshToken string, now time.Time) (*Token, error) {
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("%w: no access_token", ErrBadResponse)
	}
	if tt := tok.Type(); tt != "Bearer" {
		return nil, fmt.Errorf("%w: token_type %q is not Bearer", ErrBadResponse, truncate(tt, 32))
	}
	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	switch {
	case tok.ExpiresIn <= 0:
		return nil, fmt.Errorf("%w: expires_in missing, zero or negative", ErrBadResponse)
	case lifetime > MaxLifetime:
		return nil, fmt.Errorf("%w: expires_in of %d seconds is longer than %s", ErrBadResponse, tok.ExpiresIn, MaxLifetime)
	}
	t := &Token{
		AccessToken: tok.AccessToken,
		TokenType:   "Bearer",
		Expiry:      now.Add(lifetime).Truncate(time.Second),
		Scopes:      strings.Fields(extraString(tok, "scope")),
		IDToken:     extraString(tok, "id_token"),
	}
	if tok.RefreshToken != "" && tok.RefreshToken != refreshToken {
		t.RefreshToken = tok.RefreshToken
	}
	if v, ok := tok.Extra("refresh_token_expires_in").(float64); ok && v > 0 {
		t.RefreshTokenExpiresIn = time.Duration(v) * time.Second
	}
	return t, nil
}

func extraString(tok *oauth2.Token, key string) string {
	s, _ := tok.Extra(key).(string)
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// RevokeError is a failed revocation. Temporary reports whether retrying may help.
type RevokeError struct {
	Status int
	Code   string
	Err    error
}

func (e *RevokeError) Error() string {
	if e.Err != nil {
		return "revoke request failed: " + e.Err.Error()
	}
	if e.Code != "" {
		return fmt.Sprintf("revoke endpoint answered %s with HTTP %d", e.Code, e.Status)
	}
	return fmt.Sprintf("revoke endpoint answered HTTP %d", e.Status)
}

// Temporary: network errors, 408, 429 and 5xx.
func (e *RevokeError) Temporary() bool {
	return e.Err != nil || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// AlreadyInvalid: Google answers 400 for a token that is already revoked or expired; for a
// caller that wants the token dead, that is success.
func (e *RevokeError) AlreadyInvalid() bool { return e.Status == http.StatusBadRequest }

// Revoke revokes a token at the revocation endpoint. golang.org/x/oauth2 has no revocation
// call (RFC 7009 is not implemented there), so this is a plain form POST as Google documents.
func (e *Endpoint) Revoke(ctx context.Context, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.RevokeURL, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return &RevokeError{Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return &RevokeError{Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return &RevokeError{Status: resp.StatusCode, Code: oauthErrorCode(body)}
}

func oauthErrorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) > 64 {
		return ""
	}
	return e.Error
}

// withFormParam is hc with a transport that adds key=value to every form-encoded POST body.
// x/oauth2's refresh sends no scope and has no option to (a long-standing open request
// upstream); everything else about the request and its answer stays x/oauth2's.
func withFormParam(hc *http.Client, key, value string) *http.Client {
	return WithFormParams(hc, url.Values{key: {value}})
}
