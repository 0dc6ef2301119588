package tokenclient

// What token clients of any provider share with Google's: the check of a token answer and the
// transport that adds the form parameters x/oauth2 cannot send.

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Validate is the check every token response passes before anything is written (a Bearer
// token, a lifetime within MaxLifetime, the refresh token only when rotated), for token
// clients of other providers (internal/oauthtoken) as for Google's.
func Validate(tok *oauth2.Token, refreshToken string, now time.Time) (*Token, error) {
	return validate(tok, refreshToken, now)
}

// WithFormParams is hc with a transport that sets extra's parameters in every form-encoded
// POST body: what x/oauth2's refresh and exchange cannot send (scope on a refresh,
// resource, audience, a client assertion). The request, its authentication and the parsing
// of the answer stay x/oauth2's.
func WithFormParams(hc *http.Client, extra url.Values) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	if len(extra) == 0 {
		return hc
	}
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = formParams{base: base, extra: extra}
	return &c
}

type formParams struct {
	base  http.RoundTripper
	extra url.Values
}

func (f formParams) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.Body == nil || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return f.base.RoundTrip(req)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range f.extra {
		form[k] = vs
	}
	enc := form.Encode()
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(strings.NewReader(enc))
	r.ContentLength = int64(len(enc))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
	return f.base.RoundTrip(r)
}
