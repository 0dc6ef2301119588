package fakegoogle

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestConsentPage: a browser gets the page (login_hint preselected, one checkbox per
// non-identity scope); the form's Allow returns a code whose exchange checks PKCE, carries
// an ID token naming the chosen account, adds earlier grants with include_granted_scopes,
// and fails as Google does when the code is used twice.
func TestConsentPage(t *testing.T) {
	s := New()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddClient("id", "secret")
	verifier := "a-verifier-that-is-long-enough-for-pkce-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"id"}, "redirect_uri": {"http://127.0.0.1:1/callback"}, "response_type": {"code"},
		"scope": {"s1 s2 openid email"}, "access_type": {"offline"}, "state": {"st"}, "login_hint": {"ben@example.com"},
		"include_granted_scopes": {"true"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}

	consent := func(account string, scopes ...string) url.Values {
		req, _ := http.NewRequest(http.MethodGet, s.AuthURL()+"?"+q.Encode(), nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !regexp.MustCompile(`value="ben@example.com" checked`).Match(page) || strings.Count(string(page), `name="scope"`) != 2 {
			t.Fatalf("consent page: %s", page)
		}
		form := url.Values{"request": {q.Encode()}, "account": {account}, "action": {"allow"}, "scope": scopes}
		resp, err = noRedirect.PostForm(s.URL()+"/auth/consent", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query()
	}
	exchange := func(code, verifier string) (int, map[string]any) {
		resp, err := http.PostForm(s.TokenURL(), url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
			"redirect_uri": {"http://127.0.0.1:1/callback"}, "client_id": {"id"}, "client_secret": {"secret"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	back := consent("chris@example.com", "s1")
	if back.Get("state") != "st" || back.Get("code") == "" {
		t.Fatalf("redirect back: %v", back)
	}
	if st, body := exchange(back.Get("code"), "wrong-verifier-wrong-verifier-wrong-verifier-00"); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("wrong PKCE verifier: %d %v", st, body)
	}
	st, body := exchange(back.Get("code"), verifier)
	if st != 200 || body["refresh_token"] == nil || body["scope"] != "s1 openid email" {
		t.Fatalf("exchange: %d %v", st, body)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(body["id_token"].(string), claims); err != nil || claims["email"] != "chris@example.com" || claims["sub"] != "110000000000000000003" {
		t.Fatalf("id_token claims %v (%v)", claims, err)
	}
	if st, body := exchange(back.Get("code"), verifier); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("code used twice: %d %v", st, body)
	}
	// Incremental: s2 now, s1 from before.
	back = consent("chris@example.com", "s2")
	if _, body := exchange(back.Get("code"), verifier); !strings.Contains(body["scope"].(string), "s1") || !strings.Contains(body["scope"].(string), "s2") {
		t.Fatalf("include_granted_scopes: %v", body["scope"])
	}
	// Deny.
	resp, err := noRedirect.PostForm(s.URL()+"/auth/consent", url.Values{"request": {q.Encode()}, "action": {"deny"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "access_denied" {
		t.Fatalf("deny: %v", loc)
	}
}

// TestRegisteredRedirectURI: a client with registered redirect URIs accepts only those.
func TestRegisteredRedirectURI(t *testing.T) {
	s := New()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddClient("id", "secret")
	s.RegisterRedirectURI("id", "http://127.0.0.1:1/callback")
	for uri, want := range map[string]int{"http://127.0.0.1:1/callback": http.StatusFound, "http://127.0.0.1:2/callback": http.StatusBadRequest} {
		q := url.Values{"client_id": {"id"}, "redirect_uri": {uri}, "response_type": {"code"}, "scope": {"s1"}}
		resp, err := noRedirect.Get(s.AuthURL() + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: HTTP %d, want %d", uri, resp.StatusCode, want)
		}
	}
}
