package fakegoogle

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

func refresh(t *testing.T, s *Server, rt string) (status int) {
	t.Helper()
	resp, err := http.PostForm(s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {"id"}, "client_secret": {"secret"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRotationRecord: the fake's record of a rotation chain, including a branch made by a
// client that lost a rotated token and retried with the old one within the grace.
func TestRotationRecord(t *testing.T) {
	s := New()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddClient("id", "secret")
	s.SetRotate(true)
	s.SetRotationGrace(time.Minute)
	root := s.NewRefreshToken("id", "scope")

	hooked := 0
	s.OnNextRotation(func() { hooked++ })
	if st := refresh(t, s, root); st != 200 { // root -> a
		t.Fatalf("HTTP %d", st)
	}
	a := s.CurrentRefreshToken(root)
	if a == root || hooked != 1 {
		t.Fatalf("no rotation recorded (hook ran %d times)", hooked)
	}
	if st := refresh(t, s, root); st != 200 { // the client lost a: root -> b, within the grace
		t.Fatalf("retry with the rotated-away token: HTTP %d", st)
	}
	b := s.CurrentRefreshToken(root)
	if b == a || b == root || hooked != 1 {
		t.Fatalf("the newest of the chain is %q (a %q), hook ran %d times", b, a, hooked)
	}
	if st := refresh(t, s, b); st != 200 { // b -> c
		t.Fatalf("HTTP %d", st)
	}
	c := s.CurrentRefreshToken(root)
	if c == b || s.CurrentRefreshToken(b) != c || s.CurrentRefreshToken(a) != a {
		t.Fatalf("chain: root->%q, b->%q, a->%q", c, s.CurrentRefreshToken(b), s.CurrentRefreshToken(a))
	}

	ex := s.Exchanges()
	if len(ex) != 3 || !ex[0].Answered || ex[0].RotatedTo != a || ex[1].RotatedTo != b || ex[2].RefreshToken != b || ex[2].Ended.Before(ex[2].Arrived) {
		t.Fatalf("exchanges: %+v", ex)
	}
	toks := s.AccessTokensFor(root)
	if len(toks) != 2 {
		t.Fatalf("%d access tokens for the root, want 2", len(toks))
	}
	issued, expiry, ok := s.AccessTokenValidity(toks[0].AccessToken)
	if !ok || expiry.Sub(issued) != time.Hour || !s.AccessTokenValid(toks[0].AccessToken) {
		t.Fatalf("validity %v..%v ok=%v", issued, expiry, ok)
	}
	if _, _, ok := s.AccessTokenValidity("ya29.never-issued"); ok {
		t.Fatal("a token never issued has a validity")
	}
}

// TestRefreshScope: a refresh with scope gets exactly those scopes when the refresh token was
// granted them all (canonical forms compared), invalid_scope when not; IgnoreRefreshScope
// answers with the whole grant.
func TestRefreshScope(t *testing.T) {
	s := New()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddClient("id", "secret")
	const gmail, drive = "https://www.googleapis.com/auth/gmail.readonly", "https://www.googleapis.com/auth/drive.file"
	rt := s.NewRefreshToken("id", gmail, drive, "openid", "https://www.googleapis.com/auth/userinfo.email")
	post := func(scope string) (int, map[string]any) {
		t.Helper()
		resp, err := http.PostForm(s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
			"client_id": {"id"}, "client_secret": {"secret"}, "scope": {scope}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	for _, tc := range []struct {
		scope, want string
		status      int
	}{
		{"", gmail + " " + drive + " openid https://www.googleapis.com/auth/userinfo.email", 200},
		{drive + " openid email", drive + " openid email", 200},
		{drive, drive, 200},
		{drive + " https://www.googleapis.com/auth/calendar", "", 400},
	} {
		st, body := post(tc.scope)
		if st != tc.status || st == 200 && body["scope"] != tc.want || st == 400 && body["error"] != "invalid_scope" {
			t.Errorf("scope %q: HTTP %d %v, want %d %q", tc.scope, st, body, tc.status, tc.want)
		}
	}
	if ex := s.Exchanges(); ex[1].Scope != drive+" openid email" {
		t.Errorf("recorded scope %q", ex[1].Scope)
	}
	s.IgnoreRefreshScope(true)
	if st, body := post(drive); st != 200 || body["scope"] != gmail+" "+drive+" openid https://www.googleapis.com/auth/userinfo.email" {
		t.Errorf("IgnoreRefreshScope: HTTP %d %v", st, body)
	}
}
