package oauthdiscovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/grantkeeper/grantkeeper/internal/egress"
)

// Defaults of Fetcher.
const (
	// DefaultMaxBody bounds a metadata document: real ones are a few KiB (Okta's, among the
	// largest, is under 10 KiB).
	DefaultMaxBody = 256 << 10
	// DefaultTimeout bounds each document request.
	DefaultTimeout = 10 * time.Second
)

// Fetcher reads metadata documents over HTTP with a size and time limit. Use it by pointer.
type Fetcher struct {
	// HTTP is the client; nil uses a client that dials only what Egress allows and follows
	// no redirect to another origin.
	HTTP *http.Client
	// Egress is where an issuer may be (the issuer URL is a tenant's choice); the zero
	// Policy is public addresses only.
	Egress egress.Policy
	// MaxBody and Timeout: zero values are DefaultMaxBody and DefaultTimeout.
	MaxBody int64
	Timeout time.Duration

	once   sync.Once
	client *http.Client
}

// Error is a failed discovery. Transient failures (network, timeouts, 408, 429, 5xx) may heal
// by themselves; the others need the issuer URL or the provider fixed.
type Error struct {
	Issuer    string
	Transient bool
	// Attempts says what each metadata URL answered.
	Attempts []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("discovering the endpoints of issuer %s failed: %s", e.Issuer, strings.Join(e.Attempts, "; "))
}

// Discover reads issuer's metadata from the first of WellKnownURLs that serves one. A URL
// that answers 404 (or another 4xx) is skipped for the next; a document that is there but
// unusable (not JSON, another issuer, an insecure endpoint) ends discovery with that error,
// rather than trying to find a document that says something else.
func (f *Fetcher) Discover(ctx context.Context, issuer string) (Metadata, error) {
	urls, err := WellKnownURLs(issuer)
	if err != nil {
		return Metadata{}, &Error{Issuer: issuer, Attempts: []string{err.Error()}}
	}
	e := &Error{Issuer: issuer}
	for _, u := range urls {
		body, status, err := f.get(ctx, u)
		switch {
		case errors.Is(err, errTooLarge), errors.Is(err, egress.ErrRefused):
			// Neither heals by itself: the same document, the same address next time.
			return Metadata{}, &Error{Issuer: issuer, Attempts: append(e.Attempts, fmt.Sprintf("%s: %v", u, err))}
		case err != nil:
			e.Transient = true
			e.Attempts = append(e.Attempts, fmt.Sprintf("%s: %v", u, err))
			continue
		case status == http.StatusOK:
		case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
			e.Transient = true
			e.Attempts = append(e.Attempts, fmt.Sprintf("%s: HTTP %d", u, status))
			continue
		default:
			e.Attempts = append(e.Attempts, fmt.Sprintf("%s: HTTP %d", u, status))
			continue
		}
		m, err := Parse(body, issuer, u)
		if err != nil {
			return Metadata{}, &Error{Issuer: issuer, Attempts: append(e.Attempts, err.Error())}
		}
		return m, nil
	}
	return Metadata{}, e
}

var errTooLarge = errors.New("document too large")

func (f *Fetcher) get(ctx context.Context, u string) ([]byte, int, error) {
	timeout := f.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	maxBody := f.MaxBody
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.httpClient().Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, resp.StatusCode, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the document: %w", err)
	}
	if int64(len(body)) > maxBody {
		// Not transient: the same document will be as large next time.
		return nil, 0, fmt.Errorf("%w: more than %d bytes", errTooLarge, maxBody)
	}
	return body, resp.StatusCode, nil
}

// httpClient is HTTP, else one client made once that dials only what Egress allows and
// follows at most 3 redirects, only within the metadata URL's origin: a document fetched
// from elsewhere could name any token endpoint.
func (f *Fetcher) httpClient() *http.Client {
	if f.HTTP != nil {
		return f.HTTP
	}
	f.once.Do(func() {
		f.client = &http.Client{CheckRedirect: SameOriginRedirects(3), Transport: f.Egress.Transport(DefaultTimeout)}
	})
	return f.client
}

// SameOriginRedirects is a CheckRedirect that follows up to max redirects within the
// original request's scheme and host.
func SameOriginRedirects(max int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > max {
			return fmt.Errorf("more than %d redirects", max)
		}
		first := via[0].URL
		if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
			return fmt.Errorf("redirected to another origin (%s://%s), which is not followed", req.URL.Scheme, req.URL.Host)
		}
		return nil
	}
}
