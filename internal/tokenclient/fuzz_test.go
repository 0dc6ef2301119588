package tokenclient

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
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
	f.Add(200, "application/json", `{"access_token": "ya29.x", "expires_in": 3599, "token_type": "mac"}`, "")
	f.Add(200, "application/x-www-form-urlencoded", `access_token=ya29.x&expires_in=3599&token_type=DPoP`, "")
	const rt, secret = "1//fuzz-refresh-token-value", "GOCSPX-fuzz-client-secret"
	// Misbehaving servers echo what they were sent, in every field and status.
	f.Add(400, "application/json", `{"error": "invalid_grant", "error_description": "refresh_token `+rt+` of client_secret `+secret+` is revoked"}`, "")
	f.Add(401, "application/json", `{"error": "invalid_client", "error_description": "client_secret=`+secret+`"}`, "")
	f.Add(400, "application/json", `{"error": "`+rt+`", "error_description": "`+secret+`"}`, "")
	f.Add(400, "application/json", `{"error": "invalid_grant", "error_subtype": "`+rt+`"}`, "")
	f.Add(200, "application/json", `{"error": "invalid_request", "error_description": "grant_type=refresh_token&refresh_token=`+rt+`&client_secret=`+secret+`"}`, "")
	f.Add(500, "text/plain", `grant_type=refresh_token&refresh_token=`+rt+`&client_secret=`+secret, "")
	f.Add(200, "text/plain", `refresh_token=`+rt+`&client_secret=`+secret, "")
	f.Add(200, "application/json", `{"access_token": "ya29.x", "expires_in": "`+rt+`", "token_type": "`+secret+`"}`, "")
	f.Add(429, "application/json", `{"error": "rate_limit_exceeded", "error_description": "`+rt+`"}`, rt)
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
		tok, err := e.Refresh(context.Background(), credentials.Client{ID: "id", Secret: secret}, rt, nil, now)
		if err == nil {
			if tok.AccessToken == "" || !tok.Expiry.After(now) || tok.Expiry.After(now.Add(MaxLifetime)) {
				t.Fatalf("unsafe token accepted: expiry %v empty=%v", tok.Expiry, tok.AccessToken == "")
			}
			// Only a bearer token may be published: the type the server sent, not the one we
			// set, decides (x/oauth2 reads an absent token_type as Bearer).
			if tt := sentTokenType(contentType, body); tt != "" && !strings.EqualFold(tt, "bearer") {
				t.Fatalf("accepted a token of type %q", tt)
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

// sentTokenType is the token_type a response body carries, parsed the way x/oauth2 does:
// form-encoded for those content types, JSON otherwise.
func sentTokenType(contentType, body string) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" || mt == "text/plain" {
		v, _ := url.ParseQuery(body)
		return v.Get("token_type")
	}
	var j struct {
		TokenType string `json:"token_type"`
	}
	_ = json.Unmarshal([]byte(body), &j)
	return j.TokenType
}
