package tokenclient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

type canned struct {
	status int
	header http.Header
	body   string
}

func (c canned) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: c.status, Header: c.header, Body: io.NopCloser(strings.NewReader(c.body))}, nil
}

// FuzzRefreshResponse: whatever the token endpoint answers, Refresh either returns a token
// that is safe to publish or an error that classifies without panicking and without
// carrying the credentials that were sent.
func FuzzRefreshResponse(f *testing.F) {
	f.Add(200, "application/json", `{"access_token": "ya29.x", "expires_in": 3599, "scope": "a b", "token_type": "Bearer"}`, "")
	f.Add(200, "application/json", `{"access_token": "ya29.x", "expires_in": "3599", "token_type": "bearer", "refresh_token": "1//new"}`, "")
	f.Add(200, "application/x-www-form-urlencoded", `access_token=ya29.x&expires_in=3599&token_type=Bearer`, "")
	f.Add(200, "text/plain", `garbage`, "")
	f.Add(400, "application/json", `{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}`, "")
	f.Add(401, "application/json", `{"error": "invalid_client", "error_description": "The OAuth client was not found."}`, "")
	f.Add(429, "application/json", `{"error": "rate_limit_exceeded"}`, "30")
	f.Add(503, "text/html", `<html>unavailable</html>`, "Wed, 21 Oct 2026 07:28:00 GMT")
	f.Add(200, "application/json", `{"access_token": "ya29.x", "expires_in": -1, "token_type": "Bearer"}`, "")
	f.Add(200, "application/json", `{"access_token": "ya29.x", "expires_in": 1e300, "token_type": "Bearer"}`, "")
	const rt, secret = "1//fuzz-refresh-token-value", "GOCSPX-fuzz-client-secret"
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, contentType, body, retryAfter string) {
		if status < 100 || status > 599 {
			return
		}
		h := http.Header{"Content-Type": {contentType}}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		e := &Endpoint{TokenURL: "https://oauth2.example.test/token", HTTP: &http.Client{Transport: canned{status, h, body}}}
		tok, err := e.Refresh(context.Background(), credentials.Client{ID: "id", Secret: secret}, rt, now)
		if err == nil {
			if tok.AccessToken == "" || tok.TokenType != "Bearer" || !tok.Expiry.After(now) || tok.Expiry.After(now.Add(MaxLifetime)) {
				t.Fatalf("unsafe token accepted: type %q expiry %v empty=%v", tok.TokenType, tok.Expiry, tok.AccessToken == "")
			}
			return
		}
		f := tokenerr.Classify(err, now).Redact(rt, secret)
		if s := f.Summary(); strings.Contains(s, rt) || strings.Contains(s, secret) {
			t.Fatalf("summary carries a credential: %s", s)
		}
		if f.RetryAfter < 0 {
			t.Fatalf("negative Retry-After %v", f.RetryAfter)
		}
	})
}
