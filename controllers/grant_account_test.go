package controllers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

// With openid, status.account comes from the ID token of every refresh; with only email,
// from one tokeninfo call per refresh token, not per refresh; without either, it stays empty.
// The email never reaches the logs at the default level (the harness logs at debug, so the
// check is on the non-debug lines).
func TestAccountIdentity(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rtOpenID := h.credentials("openid", analytics, fakegoogle.ScopeOpenID, fakegoogle.ScopeEmail)
	rtEmail := h.credentials("email", analytics, fakegoogle.ScopeEmail)
	h.credentials("plain", analytics)
	for _, n := range []string{"openid", "email", "plain"} {
		h.grant(n)
	}
	for _, tc := range []struct {
		name string
		want fakegoogle.Account
	}{{"openid", h.google.AccountOf(rtOpenID)}, {"email", h.google.AccountOf(rtEmail)}} {
		h.waitReady(tc.name)
		h.Eventually(10*time.Second, tc.name+" status.account", func() (bool, string) {
			a := h.GetGrant(tc.name).Status.Account
			if a == nil {
				return false, "nil"
			}
			return a.Sub == tc.want.Sub && a.Email == tc.want.Email, a.Sub + " " + a.Email
		})
	}
	if g := h.waitReady("plain"); g.Status.Account != nil {
		t.Errorf("a grant without openid or email got status.account %+v", g.Status.Account)
	}
	if n := h.google.TokeninfoRequests(); n != 1 {
		t.Errorf("tokeninfo requests = %d after the first refreshes, want 1 (the email-only grant)", n)
	}

	// A second refresh of each: the ID token is read again, tokeninfo is not asked again.
	before := h.google.IDTokens()
	for _, n := range []string{"openid", "email"} {
		h.requestRefresh(n)
	}
	h.Eventually(20*time.Second, "second refreshes", func() (bool, string) {
		return h.google.Requests(rtOpenID) >= 2 && h.google.Requests(rtEmail) >= 2 && h.google.IDTokens() > before, ""
	})
	h.waitReady("email")
	if n := h.google.TokeninfoRequests(); n != 1 {
		t.Errorf("tokeninfo requests = %d after a second refresh with the same refresh token, want still 1", n)
	}
	for _, a := range []fakegoogle.Account{h.google.AccountOf(rtOpenID), h.google.AccountOf(rtEmail)} {
		for _, line := range strings.Split(h.logs.String(), "\n") {
			if strings.Contains(line, a.Email) && !strings.Contains(line, "DEBUG") {
				t.Errorf("the account's email appears in a log line above debug level: %s", line)
			}
		}
	}
}
