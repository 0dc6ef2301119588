package oauthtoken

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

// ErrNoRevocationEndpoint: the provider has no RFC 7009 endpoint (deletionPolicy Revoke is
// refused for its grants).
var ErrNoRevocationEndpoint = errors.New("the provider has no revocation endpoint")

// RevokeError is a failed revocation, classified as a token request's failure would be
// (tokenerr: invalid_client is InvalidClient, 429/5xx are Transient with Retry-After...).
type RevokeError struct {
	Failure tokenerr.Failure
}

func (e *RevokeError) Error() string {
	return strings.Replace(e.Failure.Summary(), "token endpoint", "revocation endpoint", 1)
}

// Temporary reports whether retrying may help.
func (e *RevokeError) Temporary() bool { return !e.Failure.Kind.Permanent() }

// Revoke revokes token at the RFC 7009 endpoint, authenticating as c does at the token
// endpoint; hint is refresh_token or access_token (or ""). 200 is success, also for a token
// the server no longer knows (RFC 7009 section 2.2). x/oauth2 has no revocation call, so
// this is the form POST of RFC 7009 section 2.1, with x/oauth2's RetrieveError for the
// answer so that tokenerr classifies it.
func (e *Endpoint) Revoke(ctx context.Context, c Client, token, hint string, now time.Time) error {
	if e.RevocationURL == "" {
		return ErrNoRevocationEndpoint
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	var basicUser, basicPass string
	switch c.method() {
	case oauthv1alpha1.AuthClientSecretBasic:
		// RFC 6749 section 2.3.1: form-encode both before Basic, as x/oauth2 does.
		basicUser, basicPass = url.QueryEscape(c.ID), url.QueryEscape(c.Secret)
	case oauthv1alpha1.AuthClientSecretPost:
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	case oauthv1alpha1.AuthPrivateKeyJWT, oauthv1alpha1.AuthNone:
		form.Set("client_id", c.ID)
		extra, err := e.extraParams(c, Params{}, now)
		if err != nil {
			return err
		}
		for k, v := range extra {
			form[k] = v
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return &RevokeError{Failure: tokenerr.Failure{Kind: tokenerr.Transient, Detail: err.Error()}}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(basicUser, basicPass)
	}
	hc := e.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &RevokeError{Failure: tokenerr.Classify(err, now).Redact(token, c.Secret)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	re := &oauth2.RetrieveError{Response: resp, Body: body}
	var e2 struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e2) == nil && len(e2.Code) <= 64 {
		re.ErrorCode, re.ErrorDescription = e2.Code, e2.Description
	}
	return &RevokeError{Failure: tokenerr.Classify(re, now).Redact(token, c.Secret)}
}
