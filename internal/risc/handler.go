package risc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Path is where the receiver listens.
const Path = "/risc"

// MaxBody bounds a delivery: Google's tokens are a few KiB.
const MaxBody = 64 << 10

// Results of the security-events counter.
const (
	ResultApplied   = "applied"   // changed at least one grant (or warned it)
	ResultNoMatch   = "no_match"  // valid, but about no grant held here
	ResultIgnored   = "ignored"   // valid, nothing to do (verification, unknown types)
	ResultDuplicate = "duplicate" // a redelivery (same jti)
	ResultInvalid   = "invalid"   // rejected with 400
	ResultError     = "error"     // valid, but applying it failed (500: Google redelivers)
)

// SecurityEvents counts deliveries by event type (ShortName) and result. A contract.
var SecurityEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "grantkeeper_security_events_total",
	Help: "Cross-Account Protection security events received, by type and result (applied, no_match, ignored, duplicate, invalid, error).",
}, []string{"type", "result"})

func init() { ctrlmetrics.Registry.MustRegister(SecurityEvents) }

// Sink applies a verified event's effect; it returns ResultApplied, ResultNoMatch or ResultIgnored.
type Sink interface {
	Apply(ctx context.Context, ev Event, at time.Time) (string, error)
	// KnownClient reports whether a client ID is one a grant uses (the aud check).
	KnownClient(ctx context.Context, clientID string) bool
}

// Handler is the receiver: POST a Security Event Token (application/secevent+jwt), get 202
// when it is valid, 400 with nothing changed when not.
type Handler struct {
	Verifier *Verifier
	Sink     Sink
	Log      logr.Logger
	Now      func() time.Time
	seen     jtiSet
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a security event token", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		h.reject(w, errors.New("body over the size limit or unreadable"))
		return
	}
	// The sink logs through the request's context.
	ctx := logr.NewContext(r.Context(), h.Log)
	set, err := h.Verifier.Verify(ctx, strings.TrimSpace(string(body)), h.Sink.KnownClient)
	if err != nil {
		h.reject(w, err)
		return
	}
	if !h.seen.add(set.JTI) {
		for _, ev := range set.Events {
			SecurityEvents.WithLabelValues(ShortName(ev.Type), ResultDuplicate).Inc()
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	at := set.IssuedAt
	if at.IsZero() {
		at = h.now()
	}
	for _, ev := range set.Events {
		result, err := h.Sink.Apply(ctx, ev, at)
		if err != nil {
			// Forget the jti so Google's redelivery is applied; effects are idempotent.
			h.seen.remove(set.JTI)
			SecurityEvents.WithLabelValues(ShortName(ev.Type), ResultError).Inc()
			h.Log.Error(err, "applying a security event", "type", ShortName(ev.Type), "jti", set.JTI)
			http.Error(w, "could not apply the event; retry", http.StatusInternalServerError)
			return
		}
		SecurityEvents.WithLabelValues(ShortName(ev.Type), result).Inc()
		// Events about accounts no grant holds are most of a busy project's stream: debug only.
		log := h.Log.V(1)
		if result == ResultApplied {
			log = h.Log
		}
		log.Info("security event", "type", ShortName(ev.Type), "result", result, "jti", set.JTI)
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *Handler) reject(w http.ResponseWriter, err error) {
	SecurityEvents.WithLabelValues("unknown", ResultInvalid).Inc()
	h.Log.Info("rejected a security event", "error", err.Error())
	// RFC 8935 error shape; the description names the check, not the token.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(w, `{"err":"invalid_request","description":"the security event token failed validation"}`)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// maxSeen bounds the jti memory: Google redelivers within minutes, and effects are
// idempotent, so forgetting the oldest costs at most a repeated (harmless) effect.
const maxSeen = 100_000

// jtiSet remembers the last maxSeen jtis.
type jtiSet struct {
	mu    sync.Mutex
	set   map[string]struct{}
	order []string
	next  int
}

// add reports whether jti is new, remembering it.
func (s *jtiSet) add(jti string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[string]struct{}{}
	}
	if _, ok := s.set[jti]; ok {
		return false
	}
	if len(s.order) < maxSeen {
		s.order = append(s.order, jti)
	} else {
		delete(s.set, s.order[s.next])
		s.order[s.next] = jti
		s.next = (s.next + 1) % maxSeen
	}
	s.set[jti] = struct{}{}
	return true
}

func (s *jtiSet) remove(jti string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.set, jti) // its slot in order is reused later; deleting a missing key is harmless
}
