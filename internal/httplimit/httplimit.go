// Package httplimit bounds what one client, and all clients together, can make a served
// endpoint do: a token bucket per client (golang.org/x/time/rate) and a cap on requests in
// flight. Either limit answers 429 Too Many Requests with Retry-After, before the endpoint
// does any work. The per-client buckets live in an LRU of bounded size, so a flood from
// many addresses costs bounded memory (an evicted client starts again with a full bucket;
// the in-flight cap still holds).
package httplimit

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/util/cache"
)

// Limits configure a Limiter. Zero values take the defaults.
type Limits struct {
	// Rate is the requests per second one client may make on average; Burst how many at once.
	Rate  rate.Limit
	Burst int
	// MaxInFlight caps the requests being served at once, from all clients.
	MaxInFlight int
	// MaxClients bounds the clients remembered (the LRU's size).
	MaxClients int
	// ClientIPHeader, when set, names a header a trusted proxy sets (X-Forwarded-For, or
	// X-Real-IP): its right-most address is the client. Unset: the connection's peer.
	ClientIPHeader string
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Defaults: a person's browser makes a few requests a minute; Google delivers security
// events one by one.
const (
	DefaultRate        = rate.Limit(2)
	DefaultBurst       = 10
	DefaultMaxInFlight = 32
	DefaultMaxClients  = 4096
	// clientTTL: a client idle this long is forgotten (its bucket would be full again).
	clientTTL = 10 * time.Minute
)

// Limiter is the middleware; make one with New.
type Limiter struct {
	limits   Limits
	inFlight chan struct{}
	mu       sync.Mutex
	clients  *cache.LRUExpireCache
}

// New returns a Limiter with l's limits.
func New(l Limits) *Limiter {
	if l.Rate <= 0 {
		l.Rate = DefaultRate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultBurst
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.MaxClients <= 0 {
		l.MaxClients = DefaultMaxClients
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	return &Limiter{limits: l, inFlight: make(chan struct{}, l.MaxInFlight), clients: cache.NewLRUExpireCacheWithClock(l.MaxClients, clock{l.Now})}
}

type clock struct{ now func() time.Time }

func (c clock) Now() time.Time { return c.now() }

// Wrap limits next: per client, then in flight.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return l.wrap(next, true)
}

// WrapInFlight limits next by the in-flight cap alone, for an endpoint whose one caller
// serves many parties (the API server calling the webhook for every namespace): a bucket per
// address would be one bucket for all of them, so that endpoint takes its own key with Allow.
func (l *Limiter) WrapInFlight(next http.Handler) http.Handler {
	return l.wrap(next, false)
}

func (l *Limiter) wrap(next http.Handler, perClient bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if perClient {
			if wait, ok := l.Allow(l.client(r)); !ok {
				tooMany(w, wait)
				return
			}
		}
		select {
		case l.inFlight <- struct{}{}:
			defer func() { <-l.inFlight }()
		default:
			tooMany(w, time.Second)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Allow takes a token from client's bucket (client is any key: an address, a namespace);
// when there is none, it says how long until there is.
func (l *Limiter) Allow(client string) (time.Duration, bool) {
	now := l.limits.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var lim *rate.Limiter
	if v, ok := l.clients.Get(client); ok {
		lim = v.(*rate.Limiter)
	} else {
		lim = rate.NewLimiter(l.limits.Rate, l.limits.Burst)
	}
	l.clients.Add(client, lim, clientTTL) // refreshes the TTL and the LRU position
	if lim.AllowN(now, 1) {
		return 0, true
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return wait, false
}

// Clients is how many clients are remembered (tests).
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients.Keys())
}

// client is the request's client address (without the port).
func (l *Limiter) client(r *http.Request) string {
	if h := l.limits.ClientIPHeader; h != "" {
		if v := r.Header.Values(h); len(v) > 0 {
			parts := strings.Split(v[len(v)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func tooMany(w http.ResponseWriter, wait time.Duration) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte("too many requests; retry later\n"))
}
