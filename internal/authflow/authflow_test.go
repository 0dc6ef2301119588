package authflow

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

func setup(t *testing.T) (*fakegoogle.Server, Options) {
	t.Helper()
	g := fakegoogle.New()
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	g.AddClient("id.apps", "GOCSPX-authflow-test")
	return g, Options{Config: oauth2.Config{ClientID: "id.apps", ClientSecret: "GOCSPX-authflow-test", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: g.AuthURL(), TokenURL: g.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}, Timeout: 5 * time.Second}
}

func redirectOf(t *testing.T, consent string) string {
	t.Helper()
	u, err := url.Parse(consent)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("redirect_uri")
}

// TestConsentRequest: the consent URL asks for offline access, a new consent, PKCE S256 and
// a loopback redirect, and the flow returns a refresh token.
func TestConsentRequest(t *testing.T) {
	_, o := setup(t)
	var redirect string
	o.Consent = func(consent string) {
		q, _ := url.Parse(consent)
		v := q.Query()
		for k, want := range map[string]string{"access_type": "offline", "prompt": "consent", "code_challenge_method": "S256", "response_type": "code"} {
			if v.Get(k) != want {
				t.Errorf("%s = %q, want %q", k, v.Get(k), want)
			}
		}
		// Issue 28: never include_granted_scopes (it would merge other namespaces' scopes).
		if v.Has("include_granted_scopes") {
			t.Errorf("the consent URL sends include_granted_scopes=%q", v.Get("include_granted_scopes"))
		}
		if v.Get("state") == "" || v.Get("code_challenge") == "" {
			t.Error("no state or code_challenge")
		}
		redirect = redirectOf(t, consent)
		if !strings.HasPrefix(redirect, "http://127.0.0.1:") || !strings.HasSuffix(redirect, "/callback") {
			t.Errorf("redirect_uri %q is not a loopback callback", redirect)
		}
		go func() {
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(consent)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			back, err := http.Get(resp.Header.Get("Location"))
			if err == nil {
				back.Body.Close()
			}
		}()
	}
	tok, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
	if c, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(redirect, "http://"), "/callback"), time.Second); err == nil {
		c.Close()
		t.Error("the redirect listener still accepts connections after the flow")
	}
}

// TestListenerTimesOut: no browser comes back; the flow gives up and closes its listener.
func TestListenerTimesOut(t *testing.T) {
	_, o := setup(t)
	o.Timeout = 300 * time.Millisecond
	var redirect string
	o.Consent = func(consent string) { redirect = redirectOf(t, consent) }
	_, err := Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "no redirect from the browser") {
		t.Fatalf("err = %v", err)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(redirect, "http://"), "/callback"), time.Second); err == nil {
		c.Close()
		t.Error("the redirect listener still accepts connections after the timeout")
	}
}

func TestListenAddressMustBeLoopback(t *testing.T) {
	_, o := setup(t)
	o.ListenAddress = "0.0.0.0:0"
	o.Consent = func(string) { t.Error("consent URL issued for a non-loopback listener") }
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v", err)
	}
}

// TestStrayRedirectIsIgnored (issue 28 finding 14): a request with a wrong state, before the
// browser's, gets 400 and the flow keeps waiting; the browser's redirect then completes it.
func TestStrayRedirectIsIgnored(t *testing.T) {
	_, o := setup(t)
	strayStatus := make(chan int, 1)
	o.Consent = func(consent string) {
		redirect := redirectOf(t, consent)
		go func() {
			stray, err := http.Get(redirect + "?state=forged&code=forged")
			if err != nil {
				t.Error(err)
				strayStatus <- 0
				return
			}
			stray.Body.Close()
			strayStatus <- stray.StatusCode
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(consent)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if back, err := http.Get(resp.Header.Get("Location")); err == nil {
				back.Body.Close()
			}
		}()
	}
	tok, err := Run(context.Background(), o)
	if got := <-strayStatus; got != http.StatusBadRequest {
		t.Errorf("the stray redirect got HTTP %d, want 400", got)
	}
	if err != nil {
		t.Fatalf("one stray request ended the flow: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
}
