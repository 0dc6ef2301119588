package controllers_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

func TestFirstTokenAndReady(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.credentials("analytics")
	h.grant("analytics", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.Scopes = []string{analytics} })
	g := h.waitReady("analytics")

	s := h.derived("analytics-access-token")
	if s.Type != corev1.SecretTypeOpaque {
		t.Errorf("type = %s", s.Type)
	}
	if s.Labels["app.kubernetes.io/managed-by"] != "grantkeeper" || s.Labels["oauth.grantkeeper.dev/grant"] != "analytics" {
		t.Errorf("labels = %v", s.Labels)
	}
	if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != g.UID || ref.Kind != "GoogleOAuthGrant" {
		t.Errorf("controller reference = %+v, want the grant", ref)
	}
	at := string(s.Data["access_token"])
	if !h.google.AccessTokenValid(at) {
		t.Error("the derived Secret's access_token is not accepted by the (fake) Google API")
	}
	var tok oauth2.Token
	if err := json.Unmarshal(s.Data["token.json"], &tok); err != nil || tok.AccessToken != at || tok.TokenType != "Bearer" {
		t.Errorf("token.json = %s (%v)", s.Data["token.json"], err)
	}
	if string(s.Data["token_type"]) != "Bearer" || string(s.Data["expiry"]) != g.Status.ExpiresAt.UTC().Format(time.RFC3339) {
		t.Errorf("token_type %q, expiry %q, status.expiresAt %v", s.Data["token_type"], s.Data["expiry"], g.Status.ExpiresAt)
	}
	for k, v := range s.Data {
		if strings.Contains(string(v), rt) || strings.Contains(string(v), clientSecret) {
			t.Errorf("derived Secret key %s holds the refresh token or client secret", k)
		}
	}

	st := g.Status
	if st.AccessTokenSecretName != "analytics-access-token" || st.ObservedGeneration != g.Generation || st.FailedRefreshAttempts != 0 {
		t.Errorf("status = %+v", st)
	}
	lifetime := st.ExpiresAt.Sub(st.LastRefreshTime.Time)
	if lifetime < 59*time.Minute || lifetime > time.Hour {
		t.Errorf("expiresAt - lastRefreshTime = %v, want about an hour", lifetime)
	}
	if due := st.ExpiresAt.Sub(st.RefreshTime.Time); due < 20*time.Minute || due > 22*time.Minute+time.Second {
		t.Errorf("refresh due %v before expiry, want a third of the lifetime (plus jitter)", due)
	}
	if strings.Join(st.GrantedScopes, " ") != analytics || st.RefreshTokenExpiresAt != nil {
		t.Errorf("grantedScopes %v, refreshTokenExpiresAt %v", st.GrantedScopes, st.RefreshTokenExpiresAt)
	}
	h.waitCondition("analytics", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionTrue, oauthv1alpha1.ReasonAllScopesGranted)
	h.waitCondition("analytics", oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, oauthv1alpha1.ReasonRefreshSucceeded)
	h.waitEvent("analytics", "Normal/TokenIssued")
	// Two: the refresh asks for spec.scopes with openid and email, which this refresh token
	// was never granted (invalid_scope), then for spec.scopes alone (issue 28).
	if n := h.google.Requests(rt); n != 2 {
		t.Errorf("%d token requests for one grant, want 2 (with the identity scopes, then without)", n)
	}
}

// TestRefreshCycles: with 6-second tokens the derived Secret is refreshed before expiry,
// cycle after cycle, and never holds an expired or rejected token.
func TestRefreshCycles(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetLifetime(6 * time.Second)
	h.credentials("short")
	h.grant("short", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshBefore = &metav1.Duration{Duration: 3 * time.Second}
	})
	h.waitReady("short")
	seen := map[string]bool{}
	h.Eventually(60*time.Second, "five refreshed tokens", func() (bool, string) {
		s := &corev1.Secret{}
		if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "short-access-token"}, s); err != nil {
			t.Fatalf("derived Secret: %v", err)
		}
		now := time.Now()
		expiry, err := time.Parse(time.RFC3339, string(s.Data["expiry"]))
		if err != nil {
			t.Fatalf("expiry %q: %v", s.Data["expiry"], err)
		}
		at := string(s.Data["access_token"])
		if !now.Before(expiry) {
			t.Fatalf("the derived Secret held a token that expired at %s (now %s)", expiry.Format(time.RFC3339), now.Format(time.RFC3339Nano))
		}
		if !h.google.AccessTokenValid(at) {
			t.Fatalf("the derived Secret held a token the API rejects")
		}
		seen[at] = true
		return len(seen) >= 5, fmt.Sprintf("%d distinct tokens", len(seen))
	})
	g := h.GetGrant("short")
	if g.Status.FailedRefreshAttempts != 0 || !meta.IsStatusConditionTrue(g.Status.Conditions, oauthv1alpha1.ConditionReady) {
		t.Errorf("status after cycles: %+v", g.Status)
	}
	// Routine refreshes do not make events: only the first token did.
	for _, e := range h.events("short") {
		if !strings.HasPrefix(e, "Normal/TokenIssued") {
			t.Errorf("unexpected event on routine refresh: %s", e)
		}
	}
}

// TestRestartWithFreshTokenMakesNoRequest: a new manager (restart, leader change) finds the
// token fresh and only schedules itself.
func TestRestartWithFreshTokenMakesNoRequest(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.credentials("restart")
	h.grant("restart")
	before := h.waitReady("restart")
	h.stopManager()
	n := h.google.Requests(rt)

	started := time.Now()
	h.startManager()
	h.waitDecidedAfter("restart", started)
	h.poke("restart")
	if got := h.google.Requests(rt); got != n {
		t.Errorf("restart made %d token request(s), want none", got-n)
	}
	after := h.GetGrant("restart")
	if !after.Status.RefreshTime.Equal(before.Status.RefreshTime) || !after.Status.ExpiresAt.Equal(before.Status.ExpiresAt) {
		t.Errorf("schedule changed across restart: refreshTime %v -> %v", before.Status.RefreshTime, after.Status.RefreshTime)
	}
}

// TestInvalidGrant: a revoked refresh token turns the grant Revoked and not Ready at once,
// keeps the last token in the derived Secret, stops requesting, and recovers when the
// refresh token is replaced.
func TestInvalidGrant(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.credentials("revoked")
	h.grant("revoked")
	h.waitReady("revoked")
	kept := h.derived("revoked-access-token").Data

	h.google.RevokeRefreshToken(rt)
	h.requestRefresh("revoked")
	g := h.waitCondition("revoked", oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, oauthv1alpha1.ReasonInvalidGrant)
	revoked := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionRevoked)
	if !strings.Contains(revoked.Message, "Token has been expired or revoked.") {
		t.Errorf("Revoked message does not carry Google's error_description: %q", revoked.Message)
	}
	ready := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
	if ready.Status != metav1.ConditionFalse || ready.Reason != oauthv1alpha1.ReasonInvalidGrant || !strings.Contains(ready.Message, `"revoked-refresh-token"`) {
		t.Errorf("Ready = %s/%s: %s", ready.Status, ready.Reason, ready.Message)
	}
	h.waitEvent("revoked", "Warning/InvalidGrant")
	if got := h.derived("revoked-access-token").Data; string(got["access_token"]) != string(kept["access_token"]) {
		t.Error("the derived Secret lost its last token after invalid_grant")
	}

	// The annotation still holds the request that was handled: not retried.
	n := h.google.Requests(rt)
	h.poke("revoked")
	h.poke("revoked")
	if got := h.google.Requests(rt); got != n {
		t.Errorf("%d more token request(s) after invalid_grant, want none until an input changes", got-n)
	}
	// A new manual request is a new input: exactly one more attempt, then quiet again.
	req := h.requestRefresh("revoked")
	h.Eventually(20*time.Second, "the second manual request handled", func() (bool, string) {
		got := h.GetGrant("revoked").Status.LastHandledRefreshRequest
		return got == req, got
	})
	h.poke("revoked")
	if got := h.google.Requests(rt); got != n+1 {
		t.Errorf("%d token request(s) for a new manual request after invalid_grant, want exactly 1", got-n)
	}

	// A new consent: the user stores a new refresh token; the grant recovers by itself.
	fresh := h.google.NewRefreshToken(clientID, analytics)
	h.setSecretData("revoked-refresh-token", map[string]string{"refresh_token": fresh})
	h.waitReady("revoked")
	h.waitCondition("revoked", oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, oauthv1alpha1.ReasonRefreshSucceeded)
	h.waitEvent("revoked", "Normal/Recovered")
}

// TestMissingSecretsRecover: missing Secrets and keys are reported precisely and fixed by
// creating or correcting them, without touching the grant.
func TestMissingSecretsRecover(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.grant("later")
	g := h.waitCondition("later", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretNotFound)
	if msg := meta.FindStatusCondition(g.Status.Conditions, "Ready").Message; !strings.Contains(msg, `"later-client"`) {
		t.Errorf("message does not name the missing Secret: %s", msg)
	}
	h.waitEvent("later", "Warning/SecretNotFound")

	h.secret("later-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.Eventually(20*time.Second, "SecretNotFound naming the refresh-token Secret", func() (bool, string) {
		c := meta.FindStatusCondition(h.GetGrant("later").Status.Conditions, "Ready")
		return c != nil && c.Reason == oauthv1alpha1.ReasonSecretNotFound && strings.Contains(c.Message, `"later-refresh-token"`), c.Message
	})

	rt := h.google.NewRefreshToken(clientID, analytics)
	h.secret("later-refresh-token", map[string]string{"token": rt})
	g = h.waitCondition("later", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretKeyMissing)
	if msg := meta.FindStatusCondition(g.Status.Conditions, "Ready").Message; !strings.Contains(msg, `"refresh_token"`) {
		t.Errorf("message does not name the missing key: %s", msg)
	}

	h.setSecretData("later-refresh-token", map[string]string{"refresh_token": rt})
	h.waitReady("later")
}

func TestClientJSONForm(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.google.NewRefreshToken(clientID, analytics)
	h.secret("json-client", map[string]string{"client_secret.json": fmt.Sprintf(
		`{"installed":{"client_id":%q,"project_id":"p","auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token","client_secret":%q,"redirect_uris":["http://localhost"]}}`, clientID, clientSecret)})
	h.secret("json-refresh-token", map[string]string{"refresh_token": rt})
	h.grant("json")
	h.waitReady("json")

	h.secret("broken-client", map[string]string{"client_secret.json": `{"installed": {"client_id": "x"`})
	h.secret("broken-refresh-token", map[string]string{"refresh_token": rt})
	h.grant("broken")
	h.waitCondition("broken", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClientSecret)
}

func TestInvalidClient(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.google.NewRefreshToken(clientID, analytics)
	h.secret("bad-client", map[string]string{"client_id": clientID, "client_secret": "GOCSPX-Wr0ngS3cr3tZq9Hy4"})
	h.secret("bad-refresh-token", map[string]string{"refresh_token": rt})
	h.grant("bad")
	g := h.waitCondition("bad", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClient)
	if msg := meta.FindStatusCondition(g.Status.Conditions, "Ready").Message; !strings.Contains(msg, "invalid_client") || !strings.Contains(msg, `"bad-client"`) {
		t.Errorf("message = %s", msg)
	}
	h.waitEvent("bad", "Warning/InvalidClient")
	n := h.google.Requests(rt)
	h.poke("bad")
	if got := h.google.Requests(rt); got != n {
		t.Errorf("%d more token request(s) with a rejected client", got-n)
	}
	h.setSecretData("bad-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.waitReady("bad")
}

// TestTransientFailuresBackOff: 503s and a 429 with Retry-After are retried with growing
// delays, Ready stays True while the token is valid, and the grant recovers by itself.
func TestTransientFailuresBackOff(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetLifetime(20 * time.Second)
	rt := h.credentials("flaky")
	h.grant("flaky", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshBefore = &metav1.Duration{Duration: 16 * time.Second}
	})
	first := h.waitReady("flaky")
	h.google.FailNext(2, fakegoogle.Failure{Status: 503})
	h.google.FailNext(1, fakegoogle.Failure{Status: 429, RetryAfter: "3"})

	h.Eventually(20*time.Second, "a failed attempt reported while Ready", func() (bool, string) {
		g := h.GetGrant("flaky")
		ready := meta.FindStatusCondition(g.Status.Conditions, "Ready")
		if g.Status.FailedRefreshAttempts == 0 {
			return false, "no failure yet"
		}
		if ready.Status != metav1.ConditionTrue {
			t.Fatalf("Ready turned %s/%s while the token was still valid: %s", ready.Status, ready.Reason, ready.Message)
		}
		return strings.Contains(ready.Message, "failed"), ready.Message
	})
	// Ready stays True through every failure until the recovery: the token stays valid.
	sawAttempts := int32(0)
	h.Eventually(30*time.Second, "recovery, Ready True throughout", func() (bool, string) {
		g := h.GetGrant("flaky")
		ready := meta.FindStatusCondition(g.Status.Conditions, "Ready")
		if ready.Status != metav1.ConditionTrue {
			t.Fatalf("Ready turned %s/%s after %d failed attempt(s) while the token was still valid: %s", ready.Status, ready.Reason, g.Status.FailedRefreshAttempts, ready.Message)
		}
		if !h.google.AccessTokenValid(string(h.derived("flaky-access-token").Data["access_token"])) {
			t.Fatal("the derived Secret holds a token the API rejects while Ready is True")
		}
		sawAttempts = max(sawAttempts, g.Status.FailedRefreshAttempts)
		return g.Status.FailedRefreshAttempts == 0 && g.Status.LastRefreshTime.After(first.Status.LastRefreshTime.Time),
			fmt.Sprintf("failedRefreshAttempts=%d", g.Status.FailedRefreshAttempts)
	})
	h.waitEvent("flaky", "Warning/RefreshFailed")
	if sawAttempts < 2 {
		t.Errorf("saw at most %d failed attempt(s) while polling, want the later ones too (3 failures were injected)", sawAttempts)
	}
	times := h.google.RequestTimes(rt)
	if len(times) < 5 {
		t.Fatalf("%d requests, want 1 first + 3 failed + 1 success", len(times))
	}
	// times[1], [2] answered 503; [3] answered 429 with Retry-After: 3; [4] succeeded.
	if gap := times[3].Sub(times[2]); gap < 500*time.Millisecond {
		t.Errorf("retry after the second 503 came %v later: no backoff", gap)
	}
	if gap := times[4].Sub(times[3]); gap < 3*time.Second {
		t.Errorf("retry after 429 with Retry-After: 3 came %v later", gap)
	}
	if len(times) > 6 {
		t.Errorf("%d token requests: retries are not bounded", len(times))
	}
	h.waitEvent("flaky", "Normal/Recovered")
}

// TestExpiredWhileFailing: when the endpoint keeps failing past expiry, Ready turns False
// with TokenEndpointError, and the grant recovers when the endpoint does.
func TestExpiredWhileFailing(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetLifetime(4 * time.Second)
	h.credentials("down")
	h.grant("down")
	h.waitReady("down")
	h.google.FailNext(1000, fakegoogle.Failure{Status: 500})
	h.waitCondition("down", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonTokenEndpointError)
	h.google.ClearFailures()
	h.waitReady("down")
}

func TestMissingScopes(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.credentials("scopes", analytics)
	h.grant("scopes", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.Scopes = []string{analytics, "https://www.googleapis.com/auth/drive.file"}
	})
	// Issue 28: the refresh asks for spec.scopes; Google refuses a scope the refresh token
	// was not granted (invalid_scope), so no narrower token is published.
	h.waitCondition("scopes", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonTokenRequestRejected)
	g := h.waitCondition("scopes", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionFalse, oauthv1alpha1.ReasonMissingScopes)
	msg := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionScopesGranted).Message
	if !strings.Contains(msg, "drive.file") || !strings.Contains(msg, "invalid_scope") {
		t.Errorf("message should name spec.scopes and Google's refusal: %s", msg)
	}
	if g.Status.ExpiresAt != nil {
		t.Errorf("a token was published for a grant whose scopes Google refused: expiresAt %v", g.Status.ExpiresAt)
	}
}

// TestTargetConflict: a Secret of the derived name that the grant does not own is never
// changed; the grant says why; removing the Secret lets the grant proceed.
func TestTargetConflict(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	foreign := h.secret("mine", map[string]string{"access_token": "someone else's", "other": "data"})
	h.Get("mine", foreign)
	rt := h.credentials("conflict")
	h.grant("conflict", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.AccessTokenSecretName = "mine" })
	g := h.waitCondition("conflict", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonTargetSecretConflict)
	if msg := meta.FindStatusCondition(g.Status.Conditions, "Ready").Message; !strings.Contains(msg, `"mine"`) || !strings.Contains(msg, "accessTokenSecretName") {
		t.Errorf("message = %s", msg)
	}
	h.waitEvent("conflict", "Warning/TargetSecretConflict")
	h.poke("conflict")
	after := &corev1.Secret{}
	h.Get("mine", after)
	if after.ResourceVersion != foreign.ResourceVersion || string(after.Data["access_token"]) != "someone else's" || len(after.Labels) != 0 || len(after.OwnerReferences) != 0 {
		t.Errorf("the foreign Secret was changed: %+v", after.ObjectMeta)
	}
	if n := h.google.Requests(rt); n != 0 {
		t.Errorf("%d token request(s) with nowhere to put the token", n)
	}

	if err := h.C.Delete(h.Ctx, after); err != nil {
		t.Fatal(err)
	}
	h.waitReady("conflict")
}

func TestManualRefresh(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.credentials("manual")
	h.grant("manual")
	before := h.waitReady("manual")
	oldToken := string(h.derived("manual-access-token").Data["access_token"])

	req := h.requestRefresh("manual")
	h.Eventually(20*time.Second, "the manual request handled", func() (bool, string) {
		g := h.GetGrant("manual")
		return g.Status.LastHandledRefreshRequest == req, g.Status.LastHandledRefreshRequest
	})
	g := h.waitReady("manual")
	if g.Status.LastRefreshTime.Before(before.Status.LastRefreshTime) {
		t.Error("lastRefreshTime went back")
	}
	if string(h.derived("manual-access-token").Data["access_token"]) == oldToken {
		t.Error("manual refresh did not publish a new token")
	}
	if n := h.google.Requests(rt); n != 2 {
		t.Errorf("%d token requests, want 2 (first + manual)", n)
	}
	h.poke("manual")
	if n := h.google.Requests(rt); n != 2 {
		t.Errorf("the manual request was honoured more than once (%d requests)", n)
	}
}

// TestRotatedRefreshTokenWrittenBack: a provider that rotates refresh tokens never makes
// the grant lose its only valid refresh token, and the write-back does not loop.
func TestRotatedRefreshTokenWrittenBack(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetRotate(true)
	rt := h.credentials("rotate")
	h.allowWriteBack("rotate-refresh-token", "rotate")
	h.grant("rotate")
	h.waitReady("rotate")
	for i := range 2 {
		h.Eventually(20*time.Second, "the rotated refresh token in the Secret", func() (bool, string) {
			s := &corev1.Secret{}
			h.Get("rotate-refresh-token", s)
			cur := h.google.CurrentRefreshToken(rt)
			return string(s.Data["refresh_token"]) == cur && !h.google.Revoked(cur), "stale"
		})
		if i == 0 {
			h.requestRefresh("rotate")
			h.Eventually(20*time.Second, "second refresh", func() (bool, string) {
				return h.GetGrant("rotate").Status.LastHandledRefreshRequest != "", ""
			})
			h.waitReady("rotate")
		}
	}
	total := h.google.TotalRequests()
	h.poke("rotate")
	if got := h.google.TotalRequests(); got != total || total != 2 {
		t.Errorf("token requests: %d then %d, want exactly 2 (writing back must not trigger another refresh)", total, got)
	}
}

// TestRotatedTokenNotWrittenToForeignSecret (issue 28 finding 12): a grant may name any
// Secret; grantkeeper writes a rotated token only into one it may write (annotated for the
// grant, or controlled by it). Else SecretsWritable=False names the Secret and it stays as is.
// TestRotatedTokenReplacesWhatItRead: a rotated refresh token goes back into the key it was
// read from even in a user's Secret that does not allow the grant's writes (a consent may
// not write there): it replaces the token it was traded for, and dropping it would lose the
// grant. The Secret's other keys are untouched and no SecretsWritable condition appears.
func TestRotatedTokenReplacesWhatItRead(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetRotate(true)
	first := h.credentials("users")
	s := h.GetSecret("users-refresh-token")
	s.Data["note"] = []byte("kept")
	if err := h.C.Update(h.Ctx, s); err != nil {
		t.Fatal(err)
	}
	h.grant("users")
	h.waitReady("users")
	h.Eventually(20*time.Second, "the rotated refresh token in the user's Secret", func() (bool, string) {
		s := h.GetSecret("users-refresh-token")
		rt := strings.TrimSpace(string(s.Data["refresh_token"]))
		return rt != first && rt != "" && string(s.Data["note"]) == "kept", fmt.Sprintf("note %q", s.Data["note"])
	})
	if c := meta.FindStatusCondition(h.GetGrant("users").Status.Conditions, oauthv1alpha1.ConditionSecretsWritable); c != nil {
		t.Errorf("SecretsWritable %s/%s: %s", c.Status, c.Reason, c.Message)
	}
}

func TestDeletionPolicyRevoke(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.credentials("bye")
	g := h.grant("bye", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.DeletionPolicy = oauthv1alpha1.DeletionPolicyRevoke })
	h.waitReady("bye")
	h.Eventually(10*time.Second, "the revoke finalizer", func() (bool, string) {
		f := h.GetGrant("bye").Finalizers
		return len(f) == 1 && f[0] == oauthv1alpha1.RevokeFinalizer, fmt.Sprint(f)
	})
	if err := h.C.Delete(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.Eventually(20*time.Second, "the grant gone", func() (bool, string) {
		err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(g), &oauthv1alpha1.GoogleOAuthGrant{})
		return isNotFound(err), fmt.Sprint(err)
	})
	if !h.google.Revoked(rt) || h.google.RevokeRequests() != 1 {
		t.Errorf("revoked=%v after %d revoke request(s)", h.google.Revoked(rt), h.google.RevokeRequests())
	}
	// The refresh-token Secret is the user's: it stays.
	h.Get("bye-refresh-token", &corev1.Secret{})
}

// TestRevokeGivesUp: a revocation endpoint that keeps failing delays deletion only for a
// bounded number of attempts, then the grant goes with a Warning event.
func TestRevokeGivesUp(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	rt := h.credentials("stuck")
	g := h.grant("stuck", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.DeletionPolicy = oauthv1alpha1.DeletionPolicyRevoke })
	h.waitReady("stuck")
	h.google.FailNextRevokes(100, 503)
	if err := h.C.Delete(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("stuck", "Warning/RevokeFailed")
	h.Eventually(30*time.Second, "the grant gone despite the failing endpoint", func() (bool, string) {
		err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(g), &oauthv1alpha1.GoogleOAuthGrant{})
		return isNotFound(err), fmt.Sprint(err)
	})
	if n := h.google.RevokeRequests(); n != 3 {
		t.Errorf("%d revoke attempts, want the configured maximum of 3", n)
	}
	if h.google.Revoked(rt) {
		t.Error("the fake says revoked although every revoke failed")
	}
}

// TestDerivedSecretRepaired: a derived Secret deleted or edited by hand is put right.
func TestDerivedSecretRepaired(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.credentials("repair")
	h.grant("repair")
	h.waitReady("repair")

	s := h.derived("repair-access-token")
	if err := h.C.Delete(h.Ctx, s); err != nil {
		t.Fatal(err)
	}
	h.Eventually(20*time.Second, "the derived Secret recreated", func() (bool, string) {
		s := &corev1.Secret{}
		err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "repair-access-token"}, s)
		return err == nil && h.google.AccessTokenValid(string(s.Data["access_token"])), fmt.Sprint(err)
	})

	s = h.derived("repair-access-token")
	s.Data["access_token"] = []byte("edited by hand")
	delete(s.Labels, "app.kubernetes.io/managed-by")
	if err := h.C.Update(h.Ctx, s); err != nil {
		t.Fatal(err)
	}
	h.Eventually(20*time.Second, "the edited Secret corrected", func() (bool, string) {
		s := h.derived("repair-access-token")
		return h.google.AccessTokenValid(string(s.Data["access_token"])) && s.Labels["app.kubernetes.io/managed-by"] == "grantkeeper", string(s.Data["access_token"])
	})
	h.waitReady("repair")

	// Its owner reference removed by hand: taken back (our labels name this grant), not a conflict.
	s = h.derived("repair-access-token")
	s.OwnerReferences = nil
	if err := h.C.Update(h.Ctx, s); err != nil {
		t.Fatal(err)
	}
	h.Eventually(20*time.Second, "the owner reference restored", func() (bool, string) {
		s := h.derived("repair-access-token")
		ref := metav1.GetControllerOf(s)
		return ref != nil && ref.Name == "repair", fmt.Sprint(s.OwnerReferences)
	})
	h.waitReady("repair")
}

// TestAuthorizedUserForm: gcloud's application-default credentials JSON works as the only
// input, and a rotated refresh token is written back into it with every other field kept.
func TestAuthorizedUserForm(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetRotate(true)
	rt := h.google.NewRefreshToken(clientID, analytics)
	adc := fmt.Sprintf(`{"account": "", "client_id": %q, "client_secret": %q, "quota_project_id": "reports-prod", "refresh_token": %q, "type": "authorized_user", "universe_domain": "googleapis.com"}`, clientID, clientSecret, rt)
	h.secret("gcloud-adc", map[string]string{"credentials.json": adc})
	h.allowWriteBack("gcloud-adc", "adc")
	h.grant("adc", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.ClientSecretRef, s.RefreshTokenSecretRef = nil, nil
		s.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: "gcloud-adc"}
	})
	h.waitReady("adc")
	h.Eventually(20*time.Second, "the rotated token written back into the JSON", func() (bool, string) {
		s := &corev1.Secret{}
		h.Get("gcloud-adc", s)
		var got map[string]string
		if err := json.Unmarshal(s.Data["credentials.json"], &got); err != nil {
			t.Fatalf("credentials.json no longer parses: %v", err)
		}
		ok := got["refresh_token"] == h.google.CurrentRefreshToken(rt) && got["refresh_token"] != rt &&
			got["quota_project_id"] == "reports-prod" && got["type"] == "authorized_user" && got["client_secret"] == clientSecret
		return ok, "not yet"
	})
	// The write-back is a change to a referenced Secret: wait for the decision that follows it
	// (a poke begun after we saw it) before counting.
	h.poke("adc")
	if n := h.google.TotalRequests(); n != 1 {
		t.Errorf("%d token requests, want 1 (the write-back must not trigger another)", n)
	}

	h.secret("not-adc", map[string]string{"credentials.json": `{"type": "service_account"}`})
	h.grant("sa", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.ClientSecretRef, s.RefreshTokenSecretRef = nil, nil
		s.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: "not-adc"}
	})
	h.waitCondition("sa", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClientSecret)
}

// TestRefreshTokenExpiry: when Google reports refresh_token_expires_in (time-based access),
// the status says when the refresh token itself stops working.
func TestRefreshTokenExpiry(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetRefreshTokenExpiresIn(7 * 24 * time.Hour)
	h.credentials("timed")
	h.grant("timed")
	g := h.waitReady("timed")
	if g.Status.RefreshTokenExpiresAt == nil {
		t.Fatal("status.refreshTokenExpiresAt not set")
	}
	if d := g.Status.RefreshTokenExpiresAt.Sub(g.Status.LastRefreshTime.Time); d != 7*24*time.Hour {
		t.Errorf("refreshTokenExpiresAt is %v after lastRefreshTime, want 168h", d)
	}
}
