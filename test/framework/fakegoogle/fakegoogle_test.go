package fakegoogle

import (
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
