package hydra

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// AuthRequest is an authorization request (RFC 6749 section 4.1.1, with PKCE).
type AuthRequest struct {
	ClientID      string
	RedirectURI   string
	Scopes        []string
	State         string
	CodeChallenge string // S256; empty sends none
	LoginHint     string
	// Extra parameters, such as audience or resource.
	Extra url.Values
}

// AuthCodeURL is the request at Hydra's authorization endpoint.
func (s *Server) AuthCodeURL(r AuthRequest) string {
	q := url.Values{
		"client_id":     {r.ClientID},
		"response_type": {"code"},
		"redirect_uri":  {r.RedirectURI},
		"scope":         {strings.Join(r.Scopes, " ")},
		"state":         {r.State},
	}
	if r.CodeChallenge != "" {
		q.Set("code_challenge", r.CodeChallenge)
		q.Set("code_challenge_method", "S256")
	}
	if r.LoginHint != "" {
		q.Set("login_hint", r.LoginHint)
	}
	for k, v := range r.Extra {
		q[k] = v
	}
	return s.AuthURL() + "?" + q.Encode()
}

// Authorize walks an authorization request as a browser would (Hydra, the login app, the
// consent app, Hydra again) and returns the query Hydra redirects to redirectURI with: code
// and state, or error.
func (s *Server) Authorize(ctx context.Context, r AuthRequest) (url.Values, error) {
	return Follow(ctx, s.AuthCodeURL(r), r.RedirectURI)
}

// Follow opens authURL with a fresh cookie jar, follows redirects until one goes to
// redirectURI, and returns that redirect's query.
func Follow(ctx context.Context, authURL, redirectURI string) (url.Values, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURI) {
				return http.ErrUseLastResponse
			}
			if len(via) > 20 {
				return fmt.Errorf("more than 20 redirects")
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, redirectURI) {
		return nil, fmt.Errorf("the flow ended at %s with HTTP %d, not at %s: %s", resp.Request.URL, resp.StatusCode, redirectURI, body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	return u.Query(), nil
}
