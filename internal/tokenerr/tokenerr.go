// Package tokenerr classifies token-endpoint failures into what the controller does about
// them. It matches on OAuth error codes and HTTP status, never on descriptions, which Google
// words differently over time ("Token has been expired or revoked.", "Bad Request").
package tokenerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Kind is what a failure means for the grant.
type Kind int

const (
	// Transient: network trouble, timeouts, 408/429/5xx, malformed success bodies. Retry with backoff.
	Transient Kind = iota
	// InvalidGrant: the refresh token is revoked, expired or superseded. Needs new consent.
	InvalidGrant
	// InvalidClient: the OAuth client is wrong, deleted, or not the one the token was issued to.
	InvalidClient
	// Rejected: any other refusal (invalid_scope, admin_policy_enforced, invalid_request, other 4xx).
	Rejected
	// DelegationDenied: a service account may not act as the subject for these scopes
	// (unauthorized_client to a service account's assertion). Needs a Workspace admin.
	DelegationDenied
)

// Kinds lists every Kind, for tables that must cover them all.
var Kinds = []Kind{Transient, InvalidGrant, InvalidClient, Rejected, DelegationDenied}

func (k Kind) String() string {
	switch k {
	case InvalidGrant:
		return "invalid_grant"
	case InvalidClient:
		return "invalid_client"
	case Rejected:
		return "rejected"
	case DelegationDenied:
		return "delegation_denied"
	default:
		return "transient"
	}
}

// Permanent reports whether retrying without a change of input cannot help.
func (k Kind) Permanent() bool { return k != Transient }

// Failure is a classified token-endpoint failure. Its fields never hold a token or secret.
type Failure struct {
	Kind        Kind
	Status      int           // HTTP status, 0 when no response arrived
	Code        string        // OAuth "error", such as invalid_grant
	Subtype     string        // Google's "error_subtype", such as invalid_rapt
	Description string        // OAuth "error_description"
	RetryAfter  time.Duration // from a Retry-After header, 0 if none
	Detail      string        // for failures without an OAuth error body: what went wrong
}

// Summary is a one-line description fit for conditions, events and logs.
func (f Failure) Summary() string {
	var b strings.Builder
	switch {
	case f.Code != "":
		fmt.Fprintf(&b, "token endpoint answered %s", f.Code)
		if f.Subtype != "" {
			fmt.Fprintf(&b, " (%s)", f.Subtype)
		}
		if f.Status != 0 {
			fmt.Fprintf(&b, " with HTTP %d", f.Status)
		}
		if f.Description != "" {
			fmt.Fprintf(&b, ": %q", f.Description)
		}
	case f.Status != 0:
		fmt.Fprintf(&b, "token endpoint answered HTTP %d", f.Status)
	default:
		b.WriteString("token request failed")
	}
	if f.Detail != "" {
		fmt.Fprintf(&b, ": %s", f.Detail)
	}
	if f.RetryAfter > 0 {
		fmt.Fprintf(&b, " (Retry-After %s)", f.RetryAfter)
	}
	return b.String()
}

// Redact removes the given secrets from every text field: error bodies and transport errors
// are not ours to trust, and a server could echo what it was sent.
func (f Failure) Redact(secrets ...string) Failure {
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		for _, field := range []*string{&f.Code, &f.Subtype, &f.Description, &f.Detail} {
			*field = strings.ReplaceAll(*field, s, "[redacted]")
		}
	}
	const max = 300
	if len(f.Detail) > max {
		f.Detail = f.Detail[:max] + "..."
	}
	if len(f.Description) > max {
		f.Description = f.Description[:max] + "..."
	}
	return f
}

// Classify turns an error from golang.org/x/oauth2 (or from validating its token) into a Failure.
func Classify(err error, now time.Time) Failure {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// No OAuth error response: connection refused, timeout, malformed body, or a token
		// that failed validation. All of these can heal on their own.
		return Failure{Kind: Transient, Detail: err.Error()}
	}
	f := Failure{Code: re.ErrorCode, Description: re.ErrorDescription}
	if re.Response != nil {
		f.Status = re.Response.StatusCode
		f.RetryAfter = retryAfter(re.Response.Header.Get("Retry-After"), now)
	}
	f.Subtype = errorSubtype(re.Body)
	f.Kind = kindOf(f.Status, f.Code)
	return f
}

func kindOf(status int, code string) Kind {
	switch code {
	case "invalid_grant":
		return InvalidGrant
	case "invalid_client", "unauthorized_client", "deleted_client":
		return InvalidClient
	}
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return Transient
	case code == "temporarily_unavailable", code == "server_error":
		return Transient
	case status >= 400 && status < 500:
		return Rejected
	}
	// A 2xx with an "error" field, or a redirect: nothing we can act on; retry.
	return Transient
}

// ForServiceAccount is the failure as it applies to a service account's assertion: there
// unauthorized_client means domain-wide delegation is not granted for the subject and
// scopes (or, without a subject, that the account may not use this grant type), not a
// wrong OAuth client.
func (f Failure) ForServiceAccount() Failure {
	if f.Code == "unauthorized_client" {
		f.Kind = DelegationDenied
	}
	return f
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// errorSubtype extracts Google's error_subtype (invalid_rapt), which RetrieveError does not parse.
func errorSubtype(body []byte) string {
	var e struct {
		Subtype string `json:"error_subtype"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Subtype) > 64 {
		return ""
	}
	return e.Subtype
}
