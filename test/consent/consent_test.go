package consent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

// A new grant: ConsentRequired with a link; the link redirects to Google with the whole
// contract; the callback stores the refresh token and the account; the grant turns Ready;
// the link and the callback work once.
func TestNewGrantConsentOverHTTP(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant("ga", []string{analytics}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.LoginHint = "ben@example.com" })
	g := h.waitCondition("ga", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonConsentRequired)
	link := h.waitLink("ga", "")
	h.waitEvent("ga", oauthv1alpha1.ReasonConsentRequired)
	if len(consent.LinkID(link)) != 26 {
		t.Fatalf("link id of %q is not 130 random bits", link)
	}
	if !strings.Contains(condMessage(g, oauthv1alpha1.ConditionReady), "consent") {
		t.Errorf("Ready message does not point to consent: %q", condMessage(g, oauthv1alpha1.ConditionReady))
	}

	f := h.consentOverHTTP(link)
	q := f.authURL.Query()
	want := map[string]string{"client_id": clientID, "redirect_uri": h.base + "/callback", "response_type": "code",
		"access_type": "offline", "prompt": "consent", "code_challenge_method": "S256",
		"login_hint": "ben@example.com"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("auth URL %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("include_granted_scopes") {
		t.Errorf("auth URL sends include_granted_scopes (issue 28)")
	}
	if got := strings.Fields(q.Get("scope")); !slices.Equal(got, []string{analytics, "openid", "email"}) {
		t.Errorf("scope = %q", got)
	}
	if len(q.Get("code_challenge")) != 43 || q.Get("state") == "" {
		t.Errorf("code_challenge %q or state missing", q.Get("code_challenge"))
	}
	if f.page.status != http.StatusOK || !strings.Contains(f.page.body, "Access granted") || !strings.Contains(f.page.body, analytics) ||
		!strings.Contains(f.page.body, "ga") || !strings.Contains(f.page.body, h.Name) {
		t.Fatalf("success page: HTTP %d %s", f.page.status, f.page.body)
	}

	s := h.refreshTokenSecret("ga")
	if s == nil {
		t.Fatal("no refresh-token Secret after consent")
	}
	if s.Labels[oauthv1alpha1.ManagedByLabel] != oauthv1alpha1.ManagedByValue || len(s.OwnerReferences) != 0 {
		t.Errorf("refresh-token Secret labels %v owners %v: want managed-by and no owner", s.Labels, s.OwnerReferences)
	}
	if acc := h.google.AccountOf(string(s.Data["refresh_token"])).Email; acc != "ben@example.com" {
		t.Errorf("stored refresh token belongs to %q", acc)
	}
	start := time.Now()
	g = h.waitCondition("ga", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid)
	t.Logf("Ready %s after the callback", time.Since(start).Round(time.Millisecond))
	if g.Status.Account == nil || g.Status.Account.Email != "ben@example.com" || g.Status.Account.Sub != "110000000000000000002" {
		t.Errorf("status.account = %+v", g.Status.Account)
	}
	h.Eventually(10*time.Second, "status.consent cleared", func() (bool, string) {
		u := h.GetGrant("ga").Status.Consent
		return u == "", string(u)
	})
	h.waitEvent("ga", "ConsentGranted")

	// Once only: the link, and the callback with its state and code.
	if r := h.get(link); r.status != http.StatusGone {
		t.Errorf("reused link: HTTP %d, want 410", r.status)
	}
	before := h.google.TotalRequests()
	if r := h.get(f.back); r.status != http.StatusGone {
		t.Errorf("replayed callback: HTTP %d, want 410", r.status)
	}
	// Finding 9: a state that names the grant but not the secret part tells nothing: the same
	// 400 as for a grant that never had a link, without the grant's name.
	for _, grant := range []string{"ga", "never-had-a-link"} {
		r := h.get(h.base + "/callback?code=x&state=" + url.QueryEscape(consentState(h.Name, grant)))
		if r.status != http.StatusBadRequest || strings.Contains(r.body, `id="grant"`) || strings.Contains(r.body, ">"+grant+"<") {
			t.Errorf("a forged state for grant %q: HTTP %d, want 400 without the grant's name: %s", grant, r.status, r.body)
		}
	}
	if h.google.TotalRequests() != before {
		t.Error("a replayed callback reached the token endpoint")
	}
}

func condMessage(g *oauthv1alpha1.GoogleOAuthGrant, typ string) string {
	for _, c := range g.Status.Conditions {
		if c.Type == typ {
			return c.Message
		}
	}
	return ""
}

// Partial consent keeps the token; the refresh asks for spec.scopes, which Google refuses
// (invalid_scope), so the grant reports MissingScopes without publishing a narrower token;
// the page and status carry a follow-up link for all of spec.scopes (no
// include_granted_scopes, issue 28); using it completes the grant.
func TestPartialThenFollowUp(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant("gp", []string{analytics, drive})
	link := h.waitLink("gp", "")
	h.google.GrantOnly(analytics)
	f := h.consentOverHTTP(link)
	h.google.GrantOnly()
	if f.page.status != http.StatusOK || !strings.Contains(f.page.body, "Some access granted") || !strings.Contains(f.page.body, drive) {
		t.Fatalf("partial page: HTTP %d %s", f.page.status, f.page.body)
	}
	if h.refreshTokenSecret("gp") == nil {
		t.Fatal("partial consent: the token was not kept")
	}
	g := h.waitCondition("gp", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionFalse, oauthv1alpha1.ReasonMissingScopes)
	next := h.linkInSecret("gp")
	if g.Status.Consent != oauthv1alpha1.ConsentRequired || next == "" || next == link || !strings.Contains(f.page.body, next) {
		t.Fatalf("follow-up link %q (status.consent %q) not offered and on the page: %s", next, g.Status.Consent, f.page.body)
	}
	// The controller keeps the callback's link: no churn.
	h.waitCondition("gp", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonTokenRequestRejected)
	if u := h.linkInSecret("gp"); u != next {
		t.Fatalf("the controller replaced the follow-up link")
	}
	f2 := h.consentOverHTTP(next)
	if got := strings.Fields(f2.authURL.Query().Get("scope")); !slices.Equal(got, []string{analytics, drive, "openid", "email"}) {
		t.Errorf("follow-up asks for %q, want all of spec.scopes", got)
	}
	if !strings.Contains(f2.page.body, "Access granted") {
		t.Fatalf("follow-up page: %s", f2.page.body)
	}
	g = h.waitCondition("gp", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionTrue, oauthv1alpha1.ReasonAllScopesGranted)
	if !slices.Contains(g.Status.GrantedScopes, analytics) || !slices.Contains(g.Status.GrantedScopes, drive) {
		t.Errorf("granted scopes %v", g.Status.GrantedScopes)
	}
}

// Deny stores nothing, says so, and leaves the link usable; an account other than
// spec.loginHint stores nothing, shows both addresses, and leaves the link usable.
func TestDenyAndAccountMismatch(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant("gd", []string{analytics}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.LoginHint = "ana@example.com" })
	link := h.waitLink("gd", "")

	h.google.DenyNextConsent()
	f := h.consentOverHTTP(link)
	if f.page.status != http.StatusOK || !strings.Contains(f.page.body, "Access not granted") {
		t.Fatalf("denied page: HTTP %d %s", f.page.status, f.page.body)
	}
	h.waitEvent("gd", "ConsentDenied")
	if h.refreshTokenSecret("gd") != nil {
		t.Fatal("a Secret was stored after a denial")
	}

	h.google.ConsentAs("chris@example.com")
	f = h.consentOverHTTP(link)
	h.google.ConsentAs("")
	// The page does not show spec.loginHint to whoever opened the link (SECURITY.md).
	if f.page.status != http.StatusForbidden || strings.Contains(f.page.body, "ana@example.com") || !strings.Contains(f.page.body, "chris@example.com") {
		t.Fatalf("mismatch page: HTTP %d %s", f.page.status, f.page.body)
	}
	h.waitEvent("gd", "ConsentAccountMismatch")
	if h.refreshTokenSecret("gd") != nil {
		t.Fatal("a Secret was stored for the wrong account")
	}

	// Finding 8: an account that carries the hinted address without Google having verified
	// it is not the hinted account.
	h.google.AddAccount(fakegoogle.Account{Email: "dee@example.com", Sub: "110000000000000000009", Unverified: true})
	h.grant("gu", []string{analytics}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.LoginHint = "dee@example.com" })
	fu := h.consentOverHTTP(h.waitLink("gu", ""))
	if fu.page.status != http.StatusForbidden || !strings.Contains(fu.page.body, "Wrong Google account") {
		t.Errorf("unverified e-mail matching spec.loginHint: HTTP %d %s", fu.page.status, fu.page.body)
	}
	if h.refreshTokenSecret("gu") != nil {
		t.Error("a refresh token was stored for an account whose e-mail Google did not verify")
	}
	if g := h.GetGrant("gd"); g.Status.Account != nil {
		t.Errorf("status.account set for the wrong account: %+v", g.Status.Account)
	}
	// Still usable, by the right account.
	f = h.consentOverHTTP(link)
	if !strings.Contains(f.page.body, "Access granted") {
		t.Fatalf("the link did not stay usable: %s", f.page.body)
	}
	h.waitCondition("gd", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
}

// An expired link answers 410; the controller then mints a fresh one at the expiry.
func TestExpiredLink(t *testing.T) {
	h := newHarness(t, harnessOptions{ttl: 3 * time.Second})
	h.grant("ge", []string{analytics})
	link := h.waitLink("ge", "")
	exp := h.record("ge").ExpiresAt
	h.Eventually(10*time.Second, "link expiry", func() (bool, string) { return time.Now().After(exp), "" })
	// The controller may already have replaced it: either way the old link is gone.
	if r := h.get(link); r.status != http.StatusGone || !(strings.Contains(r.body, "expired") || strings.Contains(r.body, "already used")) {
		t.Fatalf("expired link: HTTP %d %s", r.status, r.body)
	}
	fresh := h.waitLink("ge", link)
	f := h.consentOverHTTP(fresh)
	if !strings.Contains(f.page.body, "Access granted") {
		t.Fatalf("fresh link: %s", f.page.body)
	}
}

// A revoked grant gets a link; consenting again gives it a new refresh token and it turns
// Ready.
func TestReconsentRevoked(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant("gr", []string{analytics})
	f := h.consentOverHTTP(h.waitLink("gr", ""))
	if !strings.Contains(f.page.body, "Access granted") {
		t.Fatal(f.page.body)
	}
	h.waitCondition("gr", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	old := string(h.refreshTokenSecret("gr").Data["refresh_token"])
	h.google.RevokeRefreshToken(old)
	g := h.GetGrant("gr")
	g.Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: time.Now().UTC().Add(time.Second).Format(time.RFC3339)}
	if err := h.C.Update(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.waitCondition("gr", oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, "")
	link := h.waitLink("gr", "")
	f = h.consentOverHTTP(link)
	if !strings.Contains(f.page.body, "Access granted") {
		t.Fatal(f.page.body)
	}
	h.waitCondition("gr", oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, "")
	h.waitCondition("gr", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	if now := string(h.refreshTokenSecret("gr").Data["refresh_token"]); now == old || !h.google.RefreshTokenUsable(now) {
		t.Error("re-consent did not store a new, usable refresh token")
	}
}

// Adding a scope to spec.scopes: the refresh asking for both is refused (invalid_scope), the
// grant reports MissingScopes, and its link asks for all of spec.scopes (no incremental
// authorization, issue 28).
func TestIncrementalAfterAddingScope(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant("gi", []string{analytics})
	h.consentOverHTTP(h.waitLink("gi", ""))
	h.waitCondition("gi", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	g := h.GetGrant("gi")
	g.Spec.Scopes = append(g.Spec.Scopes, drive)
	if err := h.C.Update(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.waitCondition("gi", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionFalse, oauthv1alpha1.ReasonMissingScopes)
	f := h.consentOverHTTP(h.waitLink("gi", ""))
	if got := strings.Fields(f.authURL.Query().Get("scope")); !slices.Equal(got, []string{analytics, drive, "openid", "email"}) {
		t.Errorf("the link asks for %q, want all of spec.scopes", got)
	}
	g = h.waitCondition("gi", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionTrue, "")
	if !slices.Contains(g.Status.GrantedScopes, analytics) {
		t.Errorf("earlier scope lost: %v", g.Status.GrantedScopes)
	}
}

// A grant deleted and recreated under the same name does not accept the old link.
func TestRecreatedGrantRejectsOldLink(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	g := h.grant("gx", []string{analytics})
	link := h.waitLink("gx", "")
	if err := h.C.Delete(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.Eventually(10*time.Second, "grant gone", func() (bool, string) {
		err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(g), &oauthv1alpha1.GoogleOAuthGrant{})
		return err != nil, ""
	})
	g2 := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "gx", Namespace: h.Name}, Spec: g.Spec}
	if err := h.C.Create(h.Ctx, g2); err != nil {
		t.Fatal(err)
	}
	// Before and after the new grant gets its own link.
	if r := h.get(link); r.status != http.StatusNotFound {
		t.Errorf("old link for a recreated grant: HTTP %d, want 404", r.status)
	}
	h.waitLink("gx", link)
	if r := h.get(link); r.status != http.StatusNotFound && r.status != http.StatusGone {
		t.Errorf("old link after the new grant's link: HTTP %d", r.status)
	}
}

// 1,000 forged or mutated links and states: all 4xx, nothing stored, no token request;
// the genuine sign-in still completes afterwards.
func TestForgedLinksAndStates(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant("gf", []string{analytics})
	link := h.waitLink("gf", "")
	lu, _ := url.Parse(link)
	token := path.Base(lu.Path) // the link's id, expiry and signature
	// A live attempt, so states have something to be checked against.
	open := h.get(link)
	au, _ := url.Parse(open.location)
	state := au.Query().Get("state")
	h.secrets = append(h.secrets, state)
	ns, name, nonce, ok := consent.ParseState(state)
	if !ok || ns != h.Name || name != "gf" {
		t.Fatalf("state %q does not parse", redactState(state))
	}
	rec := h.record("gf")
	requests := h.google.TotalRequests()

	rng := rand.New(rand.NewPCG(15, 15))
	mutate := func(s string) string {
		b := []byte(s)
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
		switch rng.IntN(4) {
		case 0: // flip a character
			i := rng.IntN(len(b))
			c := alphabet[rng.IntN(len(alphabet))]
			for c == b[i] {
				c = alphabet[rng.IntN(len(alphabet))]
			}
			b[i] = c
		case 1: // drop one
			i := rng.IntN(len(b))
			b = append(b[:i], b[i+1:]...)
		case 2: // add one
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		default: // lower case
			return strings.ToLower(s)
		}
		return string(b)
	}
	var urls []string
	for i := range 500 {
		switch i % 5 {
		case 0:
			urls = append(urls, h.base+consent.LinkPath(h.Name, "gf", consent.NewID()))
		case 1:
			urls = append(urls, h.base+consent.LinkPath(h.Name, "gf", mutate(token)))
		case 2:
			urls = append(urls, h.base+consent.LinkPath(h.Name, "other", token))
		case 3:
			urls = append(urls, h.base+consent.LinkPath("default", "gf", token))
		default:
			urls = append(urls, h.base+lu.Path+[]string{"/x", "/..", "%00", "/../../callback", "/"}[rng.IntN(5)])
		}
	}
	encGrant, signed, _ := strings.Cut(state, ".") // signed: nonce, start time, signature
	afterNonce := strings.TrimPrefix(signed, nonce)
	otherGrant := strings.SplitN(consentState(h.Name, "other"), ".", 2)[0]
	for i := range 500 {
		var st string
		switch i % 5 {
		case 0:
			st = encGrant + "." + consent.NewID() + afterNonce
		case 1:
			st = encGrant + "." + mutate(signed)
		case 2:
			st = otherGrant + "." + signed
		case 3:
			st = mutate(encGrant) + "." + signed
		default:
			st = []string{"", ".", nonce, state + state, strings.Repeat("A", 600)}[rng.IntN(5)]
		}
		urls = append(urls, h.base+"/callback?"+url.Values{"state": {st}, "code": {"4/fake-forged" + consent.NewID()}}.Encode())
	}
	for _, u := range urls {
		r := h.get(u)
		if r.status < 400 || r.status > 499 {
			t.Errorf("%s: HTTP %d, want 4xx", redact(u), r.status)
		}
		if r.location != "" {
			t.Errorf("%s redirected to %q", redact(u), r.location)
		}
	}
	if h.refreshTokenSecret("gf") != nil {
		t.Fatal("a forged request stored a refresh token")
	}
	if h.google.TotalRequests() != requests {
		t.Fatal("a forged request reached the token endpoint")
	}
	if after := h.record("gf"); after.LinkHash != rec.LinkHash || !after.UsedAt.IsZero() || after.Attempt == nil || after.Attempt.StateHash != rec.Attempt.StateHash {
		t.Fatal("forged requests changed the link record")
	}
	// Methods other than GET are refused.
	resp, err := h.http.Post(link, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: HTTP %d", resp.StatusCode)
	}
	h.checkHeaders("POST", resp.Header)

	// The genuine sign-in, from its own attempt, still works.
	g := h.get(open.location)
	if r := h.get(g.location); !strings.Contains(r.body, "Access granted") {
		t.Fatalf("genuine callback after the forgeries: HTTP %d %s", r.status, r.body)
	}
}

// consentState is a well-formed state for the grant, signed with a key not the server's.
func consentState(ns, name string) string {
	s, _ := consent.NewKey().NewState(ns, name, "", time.Now())
	return s
}

func redactState(s string) string {
	if len(s) > 8 {
		return s[:8] + "..."
	}
	return s
}

// A client that sends its request slowly is cut off by the read timeout; one that sends
// an oversized header gets 431.
func TestSlowAndLargeRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{readTimeout: time.Second})
	addr := strings.TrimPrefix(h.base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	// Never finish the headers; the server must close the connection by itself.
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a slow client's connection open for 10s")
	}
	t.Logf("slow client cut off after %s", time.Since(start).Round(10*time.Millisecond))

	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: HTTP %d, want 431", resp.StatusCode)
	}
	if r := h.get(h.base + "/c/" + strings.Repeat("a", 5000)); r.status != http.StatusBadRequest {
		t.Errorf("oversized URI: HTTP %d", r.status)
	}
}

// Two replicas get the same callback at once (a double submit, or a replayed redirect):
// exactly one exchanges the code and stores the token; the other answers 410.
func TestCallbackRaceAcrossReplicas(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for i := range 5 {
		name := fmt.Sprintf("race%d", i)
		h.grant(name, []string{analytics})
		open := h.get(h.waitLink(name, ""))
		g := h.get(open.location)
		q := strings.TrimPrefix(g.location, h.base)
		before := len(h.google.Exchanges())
		results := make(chan response, 2)
		for _, base := range []string{h.base, h.replica} {
			go func() { results <- h.get(base + q) }()
		}
		a, b := <-results, <-results
		statuses := []int{a.status, b.status}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []int{http.StatusOK, http.StatusGone}) {
			t.Fatalf("%s: concurrent callbacks answered %v, want one 200 and one 410", name, statuses)
		}
		// Code exchanges only (no refresh token presented): the reconciler's first refresh of
		// an earlier grant may reach the token endpoint in the same moment.
		n := 0
		for _, e := range h.google.Exchanges()[before:] {
			if e.RefreshToken == "" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s: the code was sent to the token endpoint %d times", name, n)
		}
		au, _ := url.Parse(open.location)
		h.secrets = append(h.secrets, au.Query().Get("state"))
		if bu, err := url.Parse(g.location); err == nil {
			h.secrets = append(h.secrets, bu.Query().Get("code"))
		}
	}
}

// Finding 7: an attempt belongs to the link offered when it was opened. The grant stops
// asking for a person while the sign-in is under way (here: its scopes are removed): the
// callback then stores nothing.
func TestWithdrawnLinksAttemptFails(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant("gw", []string{analytics})
	link := h.waitLink("gw", "")
	open := h.get(link)
	if open.status != http.StatusSeeOther {
		t.Fatalf("opening the link: HTTP %d", open.status)
	}
	u, _ := url.Parse(open.location)
	h.secrets = append(h.secrets, u.Query().Get("state"))
	g := h.GetGrant("gw")
	g.Spec.Scopes = nil
	if err := h.C.Update(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.Eventually(10*time.Second, "status.consent cleared", func() (bool, string) {
		c := h.GetGrant("gw").Status.Consent
		return c == "", string(c)
	})
	google := h.get(open.location)
	if google.status != http.StatusFound {
		t.Fatalf("Google answered HTTP %d", google.status)
	}
	if bu, err := url.Parse(google.location); err == nil {
		h.secrets = append(h.secrets, bu.Query().Get("code"))
	}
	if r := h.get(google.location); r.status != http.StatusGone {
		t.Errorf("the callback of a withdrawn link's attempt: HTTP %d, want 410: %s", r.status, r.body)
	}
	if h.refreshTokenSecret("gw") != nil {
		t.Error("a withdrawn link's sign-in stored a refresh token")
	}
}

// Finding 7: the consent server serves only the namespaces the manager manages.
func TestConsentServerHonoursNamespaces(t *testing.T) {
	h := newHarness(t, harnessOptions{serverNamespaces: []string{"somewhere-else"}})
	h.grant("gn", []string{analytics})
	link := h.waitLink("gn", "")
	if r := h.get(link); r.status != http.StatusNotFound {
		t.Errorf("a link of a namespace outside --namespaces: HTTP %d, want 404", r.status)
	}
}

// Finding 7: a ClusterGoogleOAuthClient is used for consent only in the namespaces it admits.
func TestClientForHonoursAllowList(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.clientSecretObj("cluster-client")
	name := "cc-" + h.Name
	cc := &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: oauthv1alpha1.ClusterGoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClusterClientSecretReference{Name: "cluster-client", Namespace: h.Name}, Namespaces: []string{"team-b"}}}
	if err := h.C.Create(h.Ctx, cc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.C.Delete(context.Background(), cc) })
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "gc", Namespace: h.Name},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{ClientRef: &oauthv1alpha1.ClientReference{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: name}}}
	if _, err := consent.ClientFor(h.Ctx, h.C, g, h.Name); !errors.Is(err, consent.ErrClientNotAllowed) {
		t.Errorf("a cluster client that admits only team-b, for a grant in %s: err = %v, want ErrClientNotAllowed", h.Name, err)
	}
	cc.Spec.Namespaces = []string{"team-b", h.Name}
	if err := h.C.Update(h.Ctx, cc); err != nil {
		t.Fatal(err)
	}
	if c, err := consent.ClientFor(h.Ctx, h.C, g, h.Name); err != nil || c.ID != clientID {
		t.Errorf("admitted: %v %q", err, c.ID)
	}
}

// Finding 12: someone who may edit grants but not Secrets cannot make grantkeeper write into
// (or adopt, and later garbage-collect) a Secret of someone else's: the grant reports
// SecretsWritable=False naming the Secret, no link is offered, the Secret is untouched.
func TestConsentWritesOnlyItsOwnSecrets(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	victim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "victim", Namespace: h.Name}, StringData: map[string]string{"password": "hunter2"}}
	squat := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: consent.SecretName("gy"), Namespace: h.Name}, StringData: map[string]string{"config": "someone's"}}
	for _, s := range []*corev1.Secret{victim, squat} {
		if err := h.C.Create(h.Ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	h.grant("gx", []string{analytics}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshTokenSecretRef = &oauthv1alpha1.RefreshTokenSecretReference{Name: "victim", Key: "token"}
	})
	h.grant("gy", []string{analytics})
	for name, secret := range map[string]string{"gx": "victim", "gy": squat.Name} {
		g := h.waitCondition(name, oauthv1alpha1.ConditionSecretsWritable, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretNotOwned)
		if msg := condMessage(g, oauthv1alpha1.ConditionSecretsWritable); !strings.Contains(msg, `"`+secret+`"`) {
			t.Errorf("%s: the condition does not name Secret %s: %s", name, secret, msg)
		}
		if g.Status.Consent != "" {
			t.Errorf("%s: status.consent = %q with no usable link", name, g.Status.Consent)
		}
	}
	for _, s := range []*corev1.Secret{victim, squat} {
		got := h.GetSecret(s.Name)
		if len(got.OwnerReferences) != 0 || len(got.Data) != 1 || got.ResourceVersion != s.ResourceVersion {
			t.Errorf("Secret %s was written: owners %v, keys %d", s.Name, got.OwnerReferences, len(got.Data))
		}
	}
	// Whoever may write the Secret can allow it; the consent then stores the token there.
	victim = h.GetSecret("victim")
	victim.Annotations = map[string]string{oauthv1alpha1.RefreshTokenForAnnotation: "gx"}
	if err := h.C.Update(h.Ctx, victim); err != nil {
		t.Fatal(err)
	}
	f := h.consentOverHTTP(h.waitLink("gx", ""))
	if !strings.Contains(f.page.body, "Access granted") {
		t.Fatalf("after the annotation: %s", f.page.body)
	}
	g := h.waitCondition("gx", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	if meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionSecretsWritable) != nil {
		t.Error("SecretsWritable stays after the fix")
	}
	if got := h.GetSecret("victim"); string(got.Data["password"]) != "hunter2" || len(got.Data["token"]) == 0 {
		t.Errorf("the consent did not add only its key: keys %d", len(got.Data))
	}
}
