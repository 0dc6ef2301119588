package risc_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

const ourClient = "123-ours.apps.googleusercontent.com"

type recordingSink struct {
	mu     sync.Mutex
	events []risc.Event
}

func (s *recordingSink) Apply(_ context.Context, ev risc.Event, _ time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	return risc.ResultApplied, nil
}

func (s *recordingSink) KnownClient(_ context.Context, id string) bool { return id == ourClient }

func (s *recordingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

type world struct {
	tx       *risctransmitter.Transmitter
	sink     *recordingSink
	verifier *risc.Verifier
	url      string
	now      time.Time
	mu       sync.Mutex
}

func newWorld(t *testing.T) *world {
	t.Helper()
	tx, err := risctransmitter.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tx.Close)
	w := &world{tx: tx, sink: &recordingSink{}, now: time.Now()}
	w.verifier = &risc.Verifier{ConfigurationURL: tx.ConfigurationURL(), RefetchFloor: time.Minute, Now: w.clock}
	srv := httptest.NewServer(&risc.Handler{Verifier: w.verifier, Sink: w.sink, Log: logr.Discard()})
	t.Cleanup(srv.Close)
	w.url = srv.URL + risc.Path
	return w
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
}

func (w *world) post(t *testing.T, raw string) int {
	t.Helper()
	code, err := w.tx.Post(w.url, raw)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestValidEventAccepted(t *testing.T) {
	w := newWorld(t)
	ev := w.tx.AccountEvent(risc.AccountDisabled, "42", map[string]any{"reason": "hijacking"})
	if code := w.post(t, w.tx.Sign(risctransmitter.Options{Audience: ourClient, IssuedAt: time.Now().Add(-48 * time.Hour)}, ev)); code != 202 {
		t.Fatalf("valid event (issued two days ago: exp is not checked) answered %d, want 202", code)
	}
	if w.sink.count() != 1 || w.sink.events[0].Subject.Sub != "42" || w.sink.events[0].Reason != "hijacking" {
		t.Errorf("sink got %+v", w.sink.events)
	}
	// aud as an array holding ours.
	if code := w.post(t, w.tx.Sign(risctransmitter.Options{Audience: ourClient}, risctransmitter.TokenRevoked("1//0abcdefghijklmnopqrstuvwxyz", risc.AlgPrefix))); code != 202 {
		t.Fatalf("token-revoked answered %d", code)
	}
	if w.sink.count() != 2 || w.sink.events[1].Subject.TokenKey() != "prefix:1//0abcdefghijkl" {
		t.Errorf("sink got %+v", w.sink.events)
	}
}

// Every hostile delivery is answered 400 and reaches nothing.
func TestHostileDeliveriesRejected(t *testing.T) {
	w := newWorld(t)
	ev := w.tx.AccountEvent(risc.TokensRevoked, "42", nil)
	ok := risctransmitter.Options{Audience: ourClient}
	// Warm the key cache with one valid event, so "unknown kid" below is refused by the floor.
	if code := w.post(t, w.tx.Sign(ok, ev)); code != 202 {
		t.Fatalf("valid event answered %d", code)
	}
	valid := w.tx.Sign(ok, ev)
	forger, _ := risctransmitter.New()
	defer forger.Close()
	parts := strings.Split(valid, ".")
	for _, tc := range []struct{ name, body string }{
		{"forged signature (another key, our kid)", forger.Sign(risctransmitter.Options{Audience: ourClient, KeyID: w.tx.KeyID()}, ev)},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(w.tx.Sign(ok, w.tx.AccountEvent(risc.TokensRevoked, "43", nil)), ".")[2]},
		{"unknown kid", forger.Sign(risctransmitter.Options{Audience: ourClient}, ev)},
		{"wrong iss", w.tx.Sign(risctransmitter.Options{Audience: ourClient, Issuer: "https://accounts.example.com/"}, ev)},
		{"wrong aud", w.tx.Sign(risctransmitter.Options{Audience: "999-other.apps.googleusercontent.com"}, ev)},
		{"no aud", w.tx.Sign(risctransmitter.Options{}, ev)},
		{"alg none", w.tx.SignNone(ok, ev)},
		{"HS256 with the public key as secret", w.tx.SignHS256WithPublicKey(ok, ev)},
		{"truncated", valid[:len(valid)-20]},
		{"two parts", parts[0] + "." + parts[1]},
		{"not a JWT", `{"events":{}}`},
		{"empty", ""},
		{"2 MiB body", valid + strings.Repeat("A", 2<<20)},
		{"no events", w.tx.Sign(ok)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := w.sink.count()
			code, err := w.tx.PostBody(w.url, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if code != 400 {
				t.Errorf("answered %d, want 400", code)
			}
			if w.sink.count() != before {
				t.Error("the event reached the sink")
			}
		})
	}
	if n := w.verifier.Fetches(); n != 1 {
		t.Errorf("configuration fetched %d times, want 1: unknown kids within the floor must not refetch", n)
	}
}

// A new kid at the transmitter is accepted after one fetch of the key set; a stream of
// unknown kids refetches at most once per floor.
func TestKeyRotation(t *testing.T) {
	w := newWorld(t)
	ev := w.tx.AccountEvent(risc.SessionsRevoked, "42", nil)
	if code := w.post(t, w.tx.Sign(risctransmitter.Options{Audience: ourClient}, ev)); code != 202 {
		t.Fatalf("answered %d", code)
	}
	if err := w.tx.Rotate(); err != nil {
		t.Fatal(err)
	}
	w.advance(2 * time.Minute)
	fetches := w.tx.Fetches()
	if code := w.post(t, w.tx.Sign(risctransmitter.Options{Audience: ourClient}, ev)); code != 202 {
		t.Fatalf("event signed with the rotated key answered %d, want 202", code)
	}
	if got := w.tx.Fetches() - fetches; got != 1 {
		t.Errorf("configuration fetched %d times for the new kid, want 1", got)
	}
	forger, _ := risctransmitter.New()
	defer forger.Close()
	for range 20 {
		if code := w.post(t, forger.Sign(risctransmitter.Options{Audience: ourClient}, ev)); code != 400 {
			t.Fatalf("unknown kid answered %d", code)
		}
	}
	if got := w.tx.Fetches() - fetches; got != 1 {
		t.Errorf("20 unknown kids within the floor made %d fetches in all, want still 1", got)
	}
	if w.sink.count() != 2 {
		t.Errorf("sink got %d events, want 2", w.sink.count())
	}
}

func TestReplayedJTIHasOneEffect(t *testing.T) {
	w := newWorld(t)
	raw := w.tx.Sign(risctransmitter.Options{Audience: ourClient, JTI: "same"}, w.tx.AccountEvent(risc.TokensRevoked, "42", nil))
	for range 3 {
		if code := w.post(t, raw); code != 202 {
			t.Fatalf("answered %d", code)
		}
	}
	if w.sink.count() != 1 {
		t.Errorf("a jti delivered three times reached the sink %d times, want 1", w.sink.count())
	}
}

func TestOnlyPost(t *testing.T) {
	w := newWorld(t)
	resp, err := w.tx.HTTP.Get(w.url)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET answered %d, want 405", resp.StatusCode)
	}
	_ = bytes.MinRead
}
