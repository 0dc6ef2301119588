package tokenerr

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

var now = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func retrieveErr(status int, body string, header http.Header) error {
	if header == nil {
		header = http.Header{}
	}
	re := &oauth2.RetrieveError{Response: &http.Response{StatusCode: status, Header: header}, Body: []byte(body)}
	// Mirror x/oauth2's own parsing of the OAuth error fields.
	for _, f := range []struct {
		key string
		dst *string
	}{{"error", &re.ErrorCode}, {"error_description", &re.ErrorDescription}} {
		if i := strings.Index(body, `"`+f.key+`": "`); i >= 0 {
			rest := body[i+len(f.key)+5:]
			*f.dst = rest[:strings.IndexByte(rest, '"')]
		}
	}
	return re
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		kind       Kind
		retryAfter time.Duration
		subtype    string
	}{
		{"invalid_grant", retrieveErr(400, `{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}`, nil), InvalidGrant, 0, ""},
		{"invalid_grant old wording", retrieveErr(400, `{"error": "invalid_grant", "error_description": "Bad Request"}`, nil), InvalidGrant, 0, ""},
		{"invalid_grant with rapt subtype", retrieveErr(400, `{"error": "invalid_grant", "error_description": "reauth related error (invalid_rapt)", "error_subtype": "invalid_rapt"}`, nil), InvalidGrant, 0, "invalid_rapt"},
		{"invalid_client", retrieveErr(401, `{"error": "invalid_client", "error_description": "The OAuth client was not found."}`, nil), InvalidClient, 0, ""},
		{"unauthorized_client", retrieveErr(401, `{"error": "unauthorized_client", "error_description": "Unauthorized"}`, nil), InvalidClient, 0, ""},
		{"deleted_client", retrieveErr(401, `{"error": "deleted_client", "error_description": "The OAuth client was deleted."}`, nil), InvalidClient, 0, ""},
		{"invalid_scope", retrieveErr(400, `{"error": "invalid_scope", "error_description": "x"}`, nil), Rejected, 0, ""},
		{"admin_policy_enforced", retrieveErr(400, `{"error": "admin_policy_enforced", "error_description": "x"}`, nil), Rejected, 0, ""},
		{"invalid_request", retrieveErr(400, `{"error": "invalid_request", "error_description": "x"}`, nil), Rejected, 0, ""},
		{"400 without body", retrieveErr(400, ``, nil), Rejected, 0, ""},
		{"408", retrieveErr(408, ``, nil), Transient, 0, ""},
		{"429 with Retry-After seconds", retrieveErr(429, `{"error": "rate_limit_exceeded"}`, http.Header{"Retry-After": {"30"}}), Transient, 30 * time.Second, ""},
		{"429 with Retry-After date", retrieveErr(429, ``, http.Header{"Retry-After": {now.Add(2 * time.Minute).Format(http.TimeFormat)}}), Transient, 2 * time.Minute, ""},
		{"429 with garbage Retry-After", retrieveErr(429, ``, http.Header{"Retry-After": {"soon"}}), Transient, 0, ""},
		{"429 with past Retry-After date", retrieveErr(429, ``, http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}), Transient, 0, ""},
		{"500", retrieveErr(500, `<html>oops</html>`, nil), Transient, 0, ""},
		{"502", retrieveErr(502, ``, nil), Transient, 0, ""},
		{"503 with Retry-After", retrieveErr(503, ``, http.Header{"Retry-After": {"5"}}), Transient, 5 * time.Second, ""},
		{"network error", errors.New(`Post "https://oauth2.googleapis.com/token": dial tcp: connection refused`), Transient, 0, ""},
		{"timeout", context.DeadlineExceeded, Transient, 0, ""},
		{"malformed json", errors.New("oauth2: cannot parse json: invalid character"), Transient, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Classify(tc.err, now)
			if f.Kind != tc.kind {
				t.Errorf("Kind = %v, want %v", f.Kind, tc.kind)
			}
			if f.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", f.RetryAfter, tc.retryAfter)
			}
			if f.Subtype != tc.subtype {
				t.Errorf("Subtype = %q, want %q", f.Subtype, tc.subtype)
			}
			if f.Summary() == "" {
				t.Error("empty Summary")
			}
			// What the controller acts on: only transient failures are retried unchanged.
			if f.Kind.Permanent() != (tc.kind != Transient) {
				t.Errorf("classified %v: Permanent() = %v, want %v", f.Kind, f.Kind.Permanent(), tc.kind != Transient)
			}
		})
	}
}

// TestForServiceAccount: unauthorized_client to a service account is a delegation refusal
// (permanent); every other answer keeps its meaning, invalid_grant included.
func TestForServiceAccount(t *testing.T) {
	for _, tc := range []struct {
		body string
		want Kind
	}{
		{`{"error": "unauthorized_client", "error_description": "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}`, DelegationDenied},
		{`{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}`, InvalidGrant},
		{`{"error": "invalid_client"}`, InvalidClient},
		{`{"error": "invalid_scope"}`, Rejected},
	} {
		f := Classify(retrieveErr(400, tc.body, nil), time.Now()).ForServiceAccount()
		if f.Kind != tc.want {
			t.Errorf("%s: kind %s, want %s", tc.body, f.Kind, tc.want)
		}
	}
	if !DelegationDenied.Permanent() {
		t.Error("DelegationDenied is retried: only an admin's change can fix it")
	}
	if f := Classify(retrieveErr(503, `{"error": "internal_failure"}`, nil), time.Now()).ForServiceAccount(); f.Kind != Transient {
		t.Errorf("503 to a service account: %s", f.Kind)
	}
}

func TestSummaryCarriesGoogleDescription(t *testing.T) {
	f := Classify(retrieveErr(400, `{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}`, nil), now)
	want := `token endpoint answered invalid_grant with HTTP 400: "Token has been expired or revoked."`
	if got := f.Summary(); got != want {
		t.Errorf("Summary = %s, want %s", got, want)
	}
}

func TestRedact(t *testing.T) {
	f := Failure{Description: "bad token 1//secret-rt for client", Detail: strings.Repeat("x", 1000) + "GOCSPX-s"}
	r := f.Redact("1//secret-rt", "GOCSPX-s")
	if strings.Contains(r.Description, "1//secret-rt") || strings.Contains(r.Summary(), "GOCSPX-s") || len(r.Detail) > 310 {
		t.Errorf("not redacted: %+v", r)
	}
	if !strings.Contains(r.Description, "[redacted]") {
		t.Errorf("Description = %q", r.Description)
	}
}
