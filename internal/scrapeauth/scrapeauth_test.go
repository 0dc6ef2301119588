package scrapeauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/cache"
)

// answers are canned review answers: which Kubernetes decides is test/metricsauth's job,
// against a real API server. Here: what the guard makes of each answer, and its caching.
type answers struct {
	users       map[string]authnv1.TokenReviewStatus // by token
	readers     map[string]bool                      // users allowed to get /metrics
	tokenCalls  int
	accessCalls int
	fail        bool
}

func (a *answers) token(_ context.Context, token string) (*authnv1.TokenReviewStatus, error) {
	a.tokenCalls++
	if a.fail {
		return nil, errors.New("connection refused")
	}
	st := a.users[token]
	return &st, nil
}

func (a *answers) access(_ context.Context, spec authzv1.SubjectAccessReviewSpec) (*authzv1.SubjectAccessReviewStatus, error) {
	a.accessCalls++
	if spec.NonResourceAttributes == nil || spec.NonResourceAttributes.Path != "/metrics" || spec.NonResourceAttributes.Verb != "get" {
		return &authzv1.SubjectAccessReviewStatus{}, nil
	}
	return &authzv1.SubjectAccessReviewStatus{Allowed: a.readers[spec.User]}, nil
}

func newGuard(a *answers) http.Handler {
	g := &guard{reviews: a, users: cache.NewLRUExpireCache(cacheSize), access: cache.NewLRUExpireCache(cacheSize)}
	h, _ := g.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("grantkeeper_metrics")) }))
	return h
}

func scrape(h http.Handler, authorization string) int {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestGuard(t *testing.T) {
	a := &answers{
		users: map[string]authnv1.TokenReviewStatus{
			"reader-token": {Authenticated: true, User: authnv1.UserInfo{Username: "system:serviceaccount:mon:prometheus"}},
			"nosy-token":   {Authenticated: true, User: authnv1.UserInfo{Username: "system:serviceaccount:mon:nosy"}},
			"forged-token": {Error: "invalid bearer token"},
			"silent-no":    {},
		},
		readers: map[string]bool{"system:serviceaccount:mon:prometheus": true},
	}
	h := newGuard(a)
	for _, c := range []struct {
		name, header string
		want         int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"basic auth", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
		{"reader", "Bearer reader-token", http.StatusOK},
		{"reader, scheme in lower case", "bearer reader-token", http.StatusOK},
		{"no metrics-reader role", "Bearer nosy-token", http.StatusForbidden},
		{"token the review rejects with a reason (as controller-runtime: 500)", "Bearer forged-token", http.StatusInternalServerError},
		{"token the review does not authenticate", "Bearer silent-no", http.StatusUnauthorized},
		{"empty token", "Bearer ", http.StatusUnauthorized},
	} {
		if got := scrape(h, c.header); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// Answers are cached: a scraper every few seconds costs no review per scrape, and a failing
// API server gives 500, never the metrics.
func TestGuardCachesAndFailsClosed(t *testing.T) {
	a := &answers{
		users:   map[string]authnv1.TokenReviewStatus{"reader-token": {Authenticated: true, User: authnv1.UserInfo{Username: "prom"}}},
		readers: map[string]bool{"prom": true},
	}
	h := newGuard(a)
	for range 5 {
		if got := scrape(h, "Bearer reader-token"); got != http.StatusOK {
			t.Fatalf("scrape: %d", got)
		}
	}
	if a.tokenCalls != 1 || a.accessCalls != 1 {
		t.Errorf("5 scrapes made %d TokenReviews and %d SubjectAccessReviews, want 1 and 1", a.tokenCalls, a.accessCalls)
	}
	down := newGuard(&answers{fail: true})
	if got := scrape(down, "Bearer reader-token"); got != http.StatusInternalServerError {
		t.Errorf("with the API server down: %d, want 500", got)
	}
}

// A token scoped down by its issuer (user.extra, e.g. a scope the authorizer reads) must not
// inherit the answer cached for the same user's full token: the decision cache is keyed on
// the whole SubjectAccessReview spec.
func TestGuardCacheKeyedOnExtra(t *testing.T) {
	full := authnv1.UserInfo{Username: "alice", UID: "u1", Groups: []string{"ops"}}
	scoped := full
	scoped.Extra = map[string]authnv1.ExtraValue{"scopes.example.com/scope": {"read:nothing"}}
	a := &scopedAnswers{answers: answers{users: map[string]authnv1.TokenReviewStatus{
		"full-token":   {Authenticated: true, User: full},
		"scoped-token": {Authenticated: true, User: scoped},
	}}}
	g := &guard{reviews: a, users: cache.NewLRUExpireCache(cacheSize), access: cache.NewLRUExpireCache(cacheSize)}
	h, _ := g.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("grantkeeper_metrics")) }))
	if got := scrape(h, "Bearer full-token"); got != http.StatusOK {
		t.Fatalf("the full token: %d, want 200", got)
	}
	if got := scrape(h, "Bearer scoped-token"); got != http.StatusForbidden {
		t.Errorf("the scoped token of the same user, right after the full one: %d, want 403 (it inherited the full token's cached allow)", got)
	}
	if a.accessCalls != 2 {
		t.Errorf("%d SubjectAccessReviews, want 2 (one per distinct spec)", a.accessCalls)
	}
}

// scopedAnswers allows alice to get /metrics only without extra (a scope-aware authorizer).
type scopedAnswers struct{ answers }

func (a *scopedAnswers) access(_ context.Context, spec authzv1.SubjectAccessReviewSpec) (*authzv1.SubjectAccessReviewStatus, error) {
	a.accessCalls++
	return &authzv1.SubjectAccessReviewStatus{Allowed: spec.User == "alice" && len(spec.Extra) == 0}, nil
}
