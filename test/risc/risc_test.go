package risc_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

var (
	alice = fakegoogle.Account{Sub: "110000000000000000001", Email: "alice@example.com"}
	bob   = fakegoogle.Account{Sub: "110000000000000000002", Email: "bob@example.com"}
)

// Every account event type against two accounts: alice's two grants get the effect, bob's
// grant is untouched, and the other way round.
func TestAccountEvents(t *testing.T) {
	h := newHarness(t)
	rtA1 := h.grant("a1", &alice, "openid", "email")
	h.grant("a2", &alice, "openid")
	rtB := h.grant("b", &bob, "openid", "email")
	for _, n := range []string{"a1", "a2", "b"} {
		h.waitReady(n)
		h.waitAccount(n)
	}
	bToken := string(h.GetSecret("b-access-token").Data["access_token"])
	rtSecretBefore := h.GetSecret("a1-refresh-token").ResourceVersion

	// Warnings only: the tokens stay.
	a1Token := string(h.GetSecret("a1-access-token").Data["access_token"])
	h.send(202, risctransmitter.Options{}, h.tx.AccountEvent(risc.SessionsRevoked, alice.Sub, nil))
	h.send(202, risctransmitter.Options{}, h.tx.AccountEvent(risc.AccountCredentialChangeRequired, alice.Sub, nil))
	for _, n := range []string{"a1", "a2"} {
		h.Eventually(10*time.Second, n+" warnings", func() (bool, string) {
			evs := h.events(n)
			return h.countEvents(n, "Warning/SessionsRevokedByGoogle") == 1 && h.countEvents(n, "Warning/AccountCredentialChangeRequired") == 1, strings.Join(evs, " ")
		})
	}
	if got := string(h.GetSecret("a1-access-token").Data["access_token"]); got != a1Token {
		t.Error("sessions-revoked or account-credential-change-required changed the access token")
	}
	if c := condition(h.GetGrant("a1"), oauthv1alpha1.ConditionReady); c != "True/TokenValid" {
		t.Errorf("a1 Ready = %s after warning events, want True/TokenValid", c)
	}

	// account-disabled: revoked, token withdrawn with expiry = the event's time; applied once.
	eventTime := time.Now().Add(-3 * time.Second).Truncate(time.Second)
	disabledApplied := received(risc.AccountDisabled, risc.ResultApplied)
	h.send(202, risctransmitter.Options{IssuedAt: eventTime}, h.tx.AccountEvent(risc.AccountDisabled, alice.Sub, map[string]any{"reason": "hijacking"}))
	if d := received(risc.AccountDisabled, risc.ResultApplied) - disabledApplied; d != 1 {
		t.Errorf("one account-disabled delivery was applied %v times, want 1", d)
	}
	for _, n := range []string{"a1", "a2"} {
		g := h.waitCondition(n, oauthv1alpha1.ConditionReady, "False/AccountDisabled")
		if c := condition(g, oauthv1alpha1.ConditionRevoked); c != "True/AccountDisabled" {
			t.Errorf("%s Revoked = %s, want True/AccountDisabled", n, c)
		}
		if msg := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady).Message; !strings.Contains(msg, "hijacking") {
			t.Errorf("%s Ready message %q does not carry Google's reason", n, msg)
		}
		h.Eventually(10*time.Second, n+" token withdrawn", func() (bool, string) {
			s := h.GetSecret(n + "-access-token")
			return len(s.Data["access_token"]) == 0 && string(s.Data["expiry"]) == eventTime.UTC().Format(time.RFC3339), string(s.Data["expiry"])
		})
		if h.countEvents(n, "Warning/AccountDisabled") != 1 {
			t.Errorf("%s events %v (one per occurrence), want one Warning/AccountDisabled", n, h.events(n))
		}
	}
	if got := h.GetSecret("a1-refresh-token").ResourceVersion; got != rtSecretBefore {
		t.Error("the refresh-token Secret was written: it is the user's data")
	}
	if c := condition(h.GetGrant("b"), oauthv1alpha1.ConditionReady); c != "True/TokenValid" || string(h.GetSecret("b-access-token").Data["access_token"]) != bToken {
		t.Errorf("bob's grant changed (Ready %s) on an event about alice", c)
	}
	if len(h.events("b")) != 1 { // TokenIssued only
		t.Errorf("bob's grant got events %v", h.events("b"))
	}

	// (No manual refresh is honoured meanwhile: plan's TestDecide; the restored grant below
	// makes one request per refresh token.)
	_ = rtA1

	// account-enabled lifts it: both grants refresh and are Ready again.
	h.send(202, risctransmitter.Options{}, h.tx.AccountEvent(risc.AccountEnabled, alice.Sub, nil))
	for _, n := range []string{"a1", "a2"} {
		g := h.waitReady(n)
		if c := condition(g, oauthv1alpha1.ConditionRevoked); c != "False/RefreshSucceeded" {
			t.Errorf("%s Revoked = %s after account-enabled and a refresh", n, c)
		}
		if len(h.GetSecret(n + "-access-token").Data["access_token"]) == 0 {
			t.Errorf("%s has no access token after account-enabled", n)
		}
	}

	// tokens-revoked for bob only.
	h.send(202, risctransmitter.Options{}, h.tx.AccountEvent(risc.TokensRevoked, bob.Sub, nil))
	g := h.waitCondition("b", oauthv1alpha1.ConditionReady, "False/TokensRevokedByGoogle")
	if c := condition(g, oauthv1alpha1.ConditionRevoked); c != "True/TokensRevokedByGoogle" {
		t.Errorf("b Revoked = %s", c)
	}
	if c := condition(h.GetGrant("a1"), oauthv1alpha1.ConditionReady); c != "True/TokenValid" {
		t.Errorf("alice's grant changed (Ready %s) on an event about bob", c)
	}

	// verification and an unknown account: 202, nothing changes.
	before := h.snapshot()
	h.send(202, risctransmitter.Options{}, risctransmitter.Event{Type: risc.Verification, Body: map[string]any{"state": "abc"}})
	h.send(202, risctransmitter.Options{}, h.tx.AccountEvent(risc.TokensRevoked, "999999999", nil))
	if after := h.snapshot(); !maps.Equal(before, after) {
		t.Errorf("verification or an event for an unknown account changed objects: %v -> %v", before, after)
	}
	_ = rtB
}

// token-revoked names the refresh token by prefix or by double hash; the grant holding it is
// revoked within moments and the others are not; a new refresh token in the Secret repairs it.
func TestTokenRevoked(t *testing.T) {
	h := newHarness(t)
	rtP := h.grant("p", nil)
	rtH := h.grant("x", nil)
	h.grant("other", nil)
	for _, n := range []string{"p", "x", "other"} {
		h.waitReady(n)
	}
	otherToken := string(h.GetSecret("other-access-token").Data["access_token"])
	for _, tc := range []struct{ grant, rt, alg, reason string }{{"p", rtP, risc.AlgPrefix, "TokenRevokedByGoogle"}, {"x", rtH, risc.AlgHashSHA512, "TokenRevokedByGoogle"}} {
		start := time.Now()
		h.send(202, risctransmitter.Options{}, risctransmitter.TokenRevoked(tc.rt, tc.alg))
		h.waitCondition(tc.grant, oauthv1alpha1.ConditionRevoked, "True/"+tc.reason)
		t.Logf("token-revoked by %s: event to Revoked=True in %s", tc.alg, time.Since(start).Round(time.Millisecond))
		h.waitCondition(tc.grant, oauthv1alpha1.ConditionReady, "False/"+tc.reason)
	}
	if c := condition(h.GetGrant("other"), oauthv1alpha1.ConditionReady); c != "True/TokenValid" || string(h.GetSecret("other-access-token").Data["access_token"]) != otherToken {
		t.Errorf("a grant holding another token changed: Ready %s", c)
	}
	// A new refresh token (a new consent) repairs the grant.
	fresh := h.google.NewRefreshToken(clientID, analytics)
	s := h.GetSecret("p-refresh-token")
	s.Data = nil
	s.StringData = map[string]string{"refresh_token": fresh}
	h.RecordSecretValues(map[string][]byte{"refresh_token": []byte(fresh)})
	if err := h.C.Update(h.Ctx, s); err != nil {
		t.Fatal(err)
	}
	h.waitReady("p")
	if h.google.Requests(rtP) != 1 {
		t.Errorf("the revoked refresh token was used %d times, want once (before the event)", h.google.Requests(rtP))
	}
}

// A replica that made no token request itself (restarted with fresh tokens in place, or a
// standby) reads the refresh-token Secrets once when an event names a token it does not know.
func TestTokenRevokedAfterRestart(t *testing.T) {
	h := newHarness(t)
	rt := h.grant("g", nil)
	h.waitReady("g")
	h.stopManager()
	h.startManager()
	h.send(202, risctransmitter.Options{}, risctransmitter.TokenRevoked(rt, risc.AlgPrefix))
	h.waitCondition("g", oauthv1alpha1.ConditionRevoked, "True/TokenRevokedByGoogle")
	if h.google.Requests(rt) != 1 {
		t.Errorf("token requests = %d, want 1: the restarted manager had a fresh token", h.google.Requests(rt))
	}
}

// Hostile deliveries through the manager's receiver: each 400, nothing changed anywhere.
func TestHostileDeliveriesChangeNothing(t *testing.T) {
	h := newHarness(t)
	rt := h.grant("g", &alice, "openid")
	h.waitReady("g")
	h.waitAccount("g")
	before := h.snapshot()
	ev := risctransmitter.TokenRevoked(rt, risc.AlgPrefix)
	acct := h.tx.AccountEvent(risc.TokensRevoked, alice.Sub, nil)
	ok := risctransmitter.Options{Audience: clientID}
	valid := h.tx.Sign(ok, ev)
	forger, err := risctransmitter.New()
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	for name, raw := range map[string]string{
		"forged signature": forger.Sign(risctransmitter.Options{Audience: clientID, KeyID: h.tx.KeyID()}, ev),
		"unknown kid":      forger.Sign(ok, acct),
		"wrong iss":        h.tx.Sign(risctransmitter.Options{Audience: clientID, Issuer: "https://accounts.google.com/"}, ev),
		"wrong aud":        h.tx.Sign(risctransmitter.Options{Audience: "42-other.apps.googleusercontent.com"}, acct),
		"alg none":         h.tx.SignNone(ok, ev),
		"HS256 public key": h.tx.SignHS256WithPublicKey(ok, acct),
		"truncated":        valid[:len(valid)-10],
		"2 MiB body":       valid + strings.Repeat("A", 2<<20),
	} {
		code, err := h.tx.Post(h.url, raw)
		if err != nil {
			t.Fatal(err)
		}
		if code != 400 {
			t.Errorf("%s: answered %d, want 400", name, code)
		}
	}
	// Then a valid event still works (the receiver is not wedged), after the check.
	if after := h.snapshot(); !maps.Equal(before, after) {
		t.Errorf("hostile deliveries changed objects: %v -> %v", before, after)
	}
	if len(h.events("g")) != 1 {
		t.Errorf("events %v, want only TokenIssued", h.events("g"))
	}
	h.post(202, valid)
	h.waitCondition("g", oauthv1alpha1.ConditionRevoked, "True/TokenRevokedByGoogle")
}

// A redelivered jti has one effect: the receiver counts one applied and two duplicates, and
// the grant has one warning (an Event without a series: three applications would fold into
// one Event with a series of 3).
func TestReplayedJTI(t *testing.T) {
	h := newHarness(t)
	h.grant("g", &alice, "openid")
	h.waitReady("g")
	h.waitAccount("g")
	applied, duplicate := received(risc.SessionsRevoked, risc.ResultApplied), received(risc.SessionsRevoked, risc.ResultDuplicate)
	raw := h.tx.Sign(risctransmitter.Options{Audience: clientID, JTI: "once"}, h.tx.AccountEvent(risc.SessionsRevoked, alice.Sub, nil))
	for range 3 {
		h.post(202, raw)
	}
	// The handler counts before it answers: the figures are final.
	if d := received(risc.SessionsRevoked, risc.ResultApplied) - applied; d != 1 {
		t.Errorf("a jti delivered three times was applied %v times, want 1", d)
	}
	if d := received(risc.SessionsRevoked, risc.ResultDuplicate) - duplicate; d != 2 {
		t.Errorf("a jti delivered three times counted %v duplicates, want 2", d)
	}
	h.Eventually(10*time.Second, "the warning", func() (bool, string) {
		return h.countEvents("g", "Warning/SessionsRevokedByGoogle") >= 1, ""
	})
	// A later, different event is a barrier: once its warning is recorded, so would be any repeat.
	h.send(202, risctransmitter.Options{}, h.tx.AccountEvent(risc.AccountCredentialChangeRequired, alice.Sub, nil))
	h.Eventually(10*time.Second, "the barrier warning", func() (bool, string) {
		return h.countEvents("g", "Warning/AccountCredentialChangeRequired") == 1, ""
	})
	if n := h.countEvents("g", "Warning/SessionsRevokedByGoogle"); n != 1 {
		t.Errorf("a jti delivered three times made %d warnings (counting an Event's series), want 1", n)
	}
}

// A grant that has no derived Secret (its token was never published: Google's answer
// carried scopes outside spec.scopes) still records a revoking event: the receiver creates
// the derived Secret in its withdrawn shape, controlled by the grant, and the reconciler
// derives Revoked=True and Ready=False from it within moments, without a token request.
func TestRevokedGrantWithoutDerivedSecret(t *testing.T) {
	h := newHarness(t)
	const drive = "https://www.googleapis.com/auth/drive"
	h.google.IgnoreRefreshScope(true)
	rt := h.grant("ex", &alice, "openid", "email", drive)
	g := h.GetGrant("ex")
	g.Spec.Scopes = []string{analytics}
	if err := h.C.Update(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.waitCondition("ex", oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonExcessScopes)
	h.waitAccount("ex")
	if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "ex-access-token"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the grant has a derived Secret (%v): the test needs one without", err)
	}
	requests := h.google.Requests(rt)

	start := time.Now()
	h.send(202, risctransmitter.Options{}, h.tx.AccountEvent(risc.TokensRevoked, alice.Sub, nil))
	g = h.waitCondition("ex", oauthv1alpha1.ConditionRevoked, "True/"+oauthv1alpha1.ReasonTokensRevokedByGoogle)
	t.Logf("tokens-revoked for a grant without a derived Secret: event to Revoked=True in %s", time.Since(start).Round(time.Millisecond))
	for typ, want := range map[string]string{oauthv1alpha1.ConditionReady: "False/" + oauthv1alpha1.ReasonTokensRevokedByGoogle, oauthv1alpha1.ConditionStalled: "True/" + oauthv1alpha1.ReasonTokensRevokedByGoogle} {
		if c := condition(g, typ); c != want {
			t.Errorf("%s = %s, want %s", typ, c, want)
		}
	}
	s := h.GetSecret("ex-access-token")
	if len(s.Data["access_token"]) != 0 || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != g.UID || s.Annotations["oauth.grantkeeper.dev/withdrawn-reason"] == "" {
		t.Errorf("the record of the event: data %v owners %v annotations %v; want a withdrawn Secret controlled by the grant", s.Data, s.OwnerReferences, s.Annotations)
	}
	if h.countEvents("ex", "Warning/"+oauthv1alpha1.ReasonTokensRevokedByGoogle) != 1 {
		t.Errorf("events %v, want one Warning/TokensRevokedByGoogle", h.events("ex"))
	}
	if got := h.google.Requests(rt); got != requests {
		t.Errorf("token requests after the event: %d, want none", got-requests)
	}
}
