package risc_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

// slowGoogle sits in front of the transmitter: while held, fetches of the configuration wait
// (as a slow network would), so an attacker can hang up in the middle of one.
type slowGoogle struct {
	mu      sync.Mutex
	held    chan struct{}
	arrived chan struct{}
}

func (g *slowGoogle) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held, g.arrived = make(chan struct{}), make(chan struct{}, 16)
}

func (g *slowGoogle) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.held)
	g.held = nil
}

func (g *slowGoogle) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		held, arrived := g.held, g.arrived
		g.mu.Unlock()
		if held != nil {
			arrived <- struct{}{}
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// The hang-up attacker: a token with an unknown kid whose sender disconnects while the key
// set is being fetched. Genuine events sent beside it, signed with a key the receiver has
// not fetched yet (first start, then after a rotation), must all be accepted.
func TestHangUpAttackerDoesNotStopGenuineEvents(t *testing.T) {
	tx, err := risctransmitter.New()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	target, _ := url.Parse(tx.ConfigurationURL())
	target.Path = ""
	g := &slowGoogle{}
	google := httptest.NewServer(g.wrap(httputil.NewSingleHostReverseProxy(target)))
	defer google.Close()

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sink := &recordingSink{}
	verifier := &risc.Verifier{ConfigurationURL: google.URL + "/.well-known/risc-configuration", RefetchFloor: 10 * time.Second, Now: clock}
	srv := httptest.NewServer(&risc.Handler{Verifier: verifier, Sink: sink, Log: logr.Discard()})
	defer srv.Close()
	receiver := srv.URL + risc.Path

	forger, err := risctransmitter.New()
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	ev := tx.AccountEvent(risc.TokensRevoked, "42", nil)

	attack := func() {
		t.Helper()
		g.hold()
		ctx, hangUp := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, receiver, bytes.NewReader([]byte(forger.Sign(risctransmitter.Options{Audience: ourClient}, ev))))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		}()
		select {
		case <-g.arrived: // the receiver is fetching the key set for the attacker's kid
		case <-time.After(10 * time.Second):
			t.Fatal("the unknown kid did not make the receiver fetch the key set")
		}
		hangUp()
		<-done
	}
	genuine := func(round string) {
		t.Helper()
		codes := make(chan int, 5)
		for range 5 {
			go func() {
				code, err := tx.Post(receiver, tx.Sign(risctransmitter.Options{Audience: ourClient}, ev))
				if err != nil {
					code = -1
				}
				codes <- code
			}()
		}
		// The genuine events arrive while the attacker's fetch is still held; then the
		// fetch completes.
		g.release()
		for range 5 {
			if code := <-codes; code != http.StatusAccepted {
				t.Errorf("%s: a genuine event answered %d, want 202", round, code)
			}
		}
	}

	attack()
	genuine("first start")
	if err := tx.Rotate(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	attack()
	genuine("after a key rotation")
	if n := sink.count(); n != 10 {
		t.Errorf("the sink got %d events, want 10", n)
	}
}
