package oauthdiscovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/internal/egress"
	"github.com/grantkeeper/grantkeeper/test/framework/hydra"
)

// TestDiscoverHydra: against a real server, the endpoints come from its metadata, whichever
// of the two documents it serves.
func TestDiscoverHydra(t *testing.T) {
	s := hydra.New(t, hydra.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, s.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	got := Resolve(Endpoints{}, &m)
	want := Endpoints{AuthorizationURL: s.AuthURL(), TokenURL: s.TokenURL(), RevocationURL: s.RevokeURL()}
	if got != want {
		t.Fatalf("endpoints %+v, want %+v", got, want)
	}
	for _, method := range []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"} {
		if !contains(m.TokenEndpointAuthMethodsSupported, method) {
			t.Errorf("Hydra's metadata lists auth methods %v, without %s", m.TokenEndpointAuthMethodsSupported, method)
		}
	}
	t.Logf("Hydra's metadata read from %s", m.Source)

	// The same server reached by another name serves a document for another issuer.
	alias := strings.Replace(s.Issuer, "127.0.0.1", "localhost", 1)
	if _, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, alias); err == nil || !strings.Contains(err.Error(), "is the metadata of issuer") {
		t.Fatalf("discovery of %s at Hydra (issuer %s): %v; want the issuer mismatch", alias, s.Issuer, err)
	}

	// An issuer that is not Hydra's (another path) finds no document, or one naming
	// another issuer: either way no endpoints.
	if _, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, s.Issuer+"/tenant"); err == nil {
		t.Fatal("discovery of another issuer at Hydra's host succeeded")
	} else {
		t.Logf("another issuer: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// server serves handler on loopback; its issuer is its URL.
func server(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func doc(issuer string) string {
	return fmt.Sprintf(`{"issuer":%q,"token_endpoint":%q}`, issuer, issuer+"/token")
}

func TestDiscoverFaults(t *testing.T) {
	ctx := context.Background()

	t.Run("RFC 8414 first", func(t *testing.T) {
		var issuer string
		issuer = server(t, func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/.well-known/oauth-authorization-server":
				fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, issuer, issuer+"/8414-token")
			case "/.well-known/openid-configuration":
				fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, issuer, issuer+"/oidc-token")
			}
		})
		m, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, issuer)
		if err != nil || m.TokenEndpoint != issuer+"/8414-token" {
			t.Fatalf("%+v, %v: want the RFC 8414 document", m, err)
		}
	})

	t.Run("OpenID when RFC 8414 is 404", func(t *testing.T) {
		var issuer string
		issuer = server(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/realms/a/.well-known/openid-configuration" {
				fmt.Fprint(w, doc(issuer+"/realms/a"))
				return
			}
			http.NotFound(w, r)
		})
		m, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, issuer+"/realms/a")
		if err != nil || m.Source != issuer+"/realms/a/.well-known/openid-configuration" {
			t.Fatalf("%+v, %v", m, err)
		}
	})

	t.Run("neither document", func(t *testing.T) {
		issuer := server(t, http.NotFound)
		_, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, issuer)
		var de *Error
		if !errors.As(err, &de) || de.Transient || len(de.Attempts) != 2 || !strings.Contains(err.Error(), "HTTP 404") {
			t.Fatalf("error %v: want a permanent error naming both 404s", err)
		}
	})

	t.Run("5xx is transient", func(t *testing.T) {
		issuer := server(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
		_, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, issuer)
		var de *Error
		if !errors.As(err, &de) || !de.Transient {
			t.Fatalf("error %v: want a transient error", err)
		}
	})

	t.Run("429 is transient", func(t *testing.T) {
		issuer := server(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		var de *Error
		if _, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, issuer); !errors.As(err, &de) || !de.Transient {
			t.Fatalf("error %v: want a transient error", err)
		}
	})

	t.Run("a document naming another issuer ends discovery", func(t *testing.T) {
		var calls atomic.Int32
		issuer := server(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			fmt.Fprint(w, doc("https://evil.example.com"))
		})
		_, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, issuer)
		var de *Error
		if !errors.As(err, &de) || de.Transient || !strings.Contains(err.Error(), "evil.example.com") || calls.Load() != 1 {
			t.Fatalf("error %v after %d requests: want a permanent error after the first", err, calls.Load())
		}
	})

	t.Run("oversized document", func(t *testing.T) {
		var issuer string
		issuer = server(t, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q,"pad":"%s"}`, issuer, issuer+"/token", strings.Repeat("x", 2<<20))
		})
		f := &Fetcher{Egress: loopbackOnly, MaxBody: 64 << 10}
		_, err := f.Discover(ctx, issuer)
		var de *Error
		if !errors.As(err, &de) || de.Transient || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("error %v: want a permanent 'too large' error", err)
		}
	})

	t.Run("slow server", func(t *testing.T) {
		release := make(chan struct{})
		issuer := server(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		start := time.Now()
		_, err := (&Fetcher{Egress: loopbackOnly, Timeout: 200 * time.Millisecond}).Discover(ctx, issuer)
		var de *Error
		if !errors.As(err, &de) || !de.Transient {
			t.Fatalf("error %v: want a transient error", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("discovery took %s with a 200ms timeout per document", d)
		}
	})

	t.Run("redirect to another origin is not followed", func(t *testing.T) {
		var otherHits atomic.Int32
		other := server(t, func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) })
		issuer := server(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other+r.URL.Path, http.StatusFound)
		})
		if _, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, issuer); err == nil {
			t.Fatal("discovery followed a redirect to another origin")
		}
		if otherHits.Load() != 0 {
			t.Fatalf("the other origin was asked %d times", otherHits.Load())
		}
	})

	t.Run("redirect within the origin is followed", func(t *testing.T) {
		var issuer string
		issuer = server(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/.well-known/oauth-authorization-server" {
				http.Redirect(w, r, "/metadata.json", http.StatusMovedPermanently)
				return
			}
			if r.URL.Path == "/metadata.json" {
				fmt.Fprint(w, doc(issuer))
				return
			}
			http.NotFound(w, r)
		})
		if m, err := (&Fetcher{Egress: loopbackOnly}).Discover(ctx, issuer); err != nil || m.TokenEndpoint != issuer+"/token" {
			t.Fatalf("%+v, %v", m, err)
		}
	})
}

// loopbackOnly admits the tests' httptest servers and Hydra, all on 127.0.0.1.
var loopbackOnly = egress.Policy{AllowLoopback: true}

// TestIssuerOnRefusedAddress: a tenant's issuerURL naming the manager's own loopback (its
// metrics, health or pprof ports) is never requested under the default policy; the failure
// says so, is permanent, and names the flag an administrator would use.
func TestIssuerOnRefusedAddress(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, issuer := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		_, err := (&Fetcher{}).Discover(ctx, issuer)
		var de *Error
		if !errors.As(err, &de) || de.Transient || !errors.Is(err, egress.ErrRefused) && !strings.Contains(err.Error(), "egress policy") {
			t.Fatalf("issuer %s: %v; want a permanent egress refusal", issuer, err)
		}
		if !strings.Contains(err.Error(), "--allow-private-network-providers") {
			t.Errorf("issuer %s: %v; want the flag named", issuer, err)
		}
		if len(de.Attempts) != 1 {
			t.Errorf("issuer %s: %d attempts after a refusal, want 1 (the second URL is on the same address)", issuer, len(de.Attempts))
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the refused server was requested %d times", n)
	}
}
