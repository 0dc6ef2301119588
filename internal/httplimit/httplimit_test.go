package httplimit_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/internal/httplimit"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func get(h http.Handler, remote string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/callback?state=x", nil)
	req.RemoteAddr = remote
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// A flood from one client is refused (429 with Retry-After) without reaching the endpoint,
// and another client is still served; the flooder is served again once its bucket refills.
func TestFloodFromOneClientDoesNotBlockAnother(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	served := 0
	h := httplimit.New(httplimit.Limits{Rate: 1, Burst: 5, Now: clk.Now}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served++ }))
	refused := 0
	for range 1000 {
		rec := get(h, "203.0.113.7:40000", nil)
		switch rec.Code {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			refused++
			if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 1 {
				t.Fatalf("Retry-After %q, want 1 (one token a second)", rec.Header().Get("Retry-After"))
			}
		default:
			t.Fatalf("answered %d", rec.Code)
		}
	}
	if served != 5 || refused != 995 {
		t.Errorf("1000 requests from one client: %d served, %d refused; want 5 (the burst) and 995", served, refused)
	}
	if rec := get(h, "198.51.100.9:5555", nil); rec.Code != http.StatusOK {
		t.Errorf("another client during the flood: %d, want 200", rec.Code)
	}
	clk.advance(time.Second)
	if rec := get(h, "203.0.113.7:40001", nil); rec.Code != http.StatusOK {
		t.Errorf("the flooder a second later: %d, want 200 (one token refilled)", rec.Code)
	}
}

// Retry-After says when the next token comes, rounded up.
func TestRetryAfterIsWhenATokenComes(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	h := httplimit.New(httplimit.Limits{Rate: 0.1, Burst: 1, Now: clk.Now}).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	get(h, "203.0.113.7:1", nil)
	clk.advance(2500 * time.Millisecond)
	rec := get(h, "203.0.113.7:1", nil)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "8" {
		t.Errorf("answered %d, Retry-After %q; want 429 and 8 (7.5 s to the next token)", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// The in-flight cap holds across clients: slow requests from many addresses fill it, the
// next is refused at once, and a slot freed serves again.
func TestInFlightCap(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	h := httplimit.New(httplimit.Limits{MaxInFlight: 3}).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
	}))
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { get(h, "192.0.2."+strconv.Itoa(i+1)+":1", nil) })
	}
	for range 3 {
		<-entered
	}
	rec := get(h, "192.0.2.99:1", nil)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a fourth request with three in flight: %d (Retry-After %q), want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	close(release)
	wg.Wait()
	if rec := get(h, "192.0.2.99:1", nil); rec.Code != http.StatusOK {
		t.Errorf("after the slow requests ended: %d, want 200", rec.Code)
	}
}

// Per-client state is bounded: a flood from 100,000 addresses keeps at most MaxClients
// buckets, and a known client evicted by it starts again with a full bucket.
func TestClientsAreBounded(t *testing.T) {
	served := 0
	l := httplimit.New(httplimit.Limits{Rate: 0.001, Burst: 1, MaxClients: 100})
	h := l.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))
	for i := range 100_000 {
		get(h, "10."+strconv.Itoa(i>>16&255)+"."+strconv.Itoa(i>>8&255)+"."+strconv.Itoa(i&255)+":1", nil)
	}
	if n := l.Clients(); n > 100 {
		t.Errorf("%d clients remembered, want at most 100", n)
	}
	if served != 100_000 {
		t.Errorf("%d of 100,000 first requests served, want all (each its own client)", served)
	}
}

// Behind a trusted proxy the client is the right-most address of the configured header:
// a client cannot pick its own bucket by sending the header itself.
func TestClientIPHeader(t *testing.T) {
	h := httplimit.New(httplimit.Limits{Rate: 0.001, Burst: 1, ClientIPHeader: "X-Forwarded-For"}).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if rec := get(h, "10.0.0.1:1", map[string]string{"X-Forwarded-For": "1.1.1.1, 203.0.113.7"}); rec.Code != 200 {
		t.Fatalf("first: %d", rec.Code)
	}
	if rec := get(h, "10.0.0.1:2", map[string]string{"X-Forwarded-For": "2.2.2.2, 203.0.113.7"}); rec.Code != http.StatusTooManyRequests {
		t.Errorf("same client, forged first hop: %d, want 429", rec.Code)
	}
	if rec := get(h, "10.0.0.1:3", map[string]string{"X-Forwarded-For": "203.0.113.8"}); rec.Code != 200 {
		t.Errorf("another client behind the same proxy: %d, want 200", rec.Code)
	}
}
