package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

const (
	saEmail = "reporter@analytics-prod.iam.gserviceaccount.com"
	analyst = "analyst@example.com"
)

// saKeySecret stores a new key of the service account in Secret name (key credentials.json).
func (h *harness) saKeySecret(name string) fakegoogle.ServiceAccountKey {
	h.T.Helper()
	k := h.google.NewServiceAccountKey(saEmail)
	h.secret(name, map[string]string{"credentials.json": string(k.JSON)})
	return k
}

// saGrant creates a service-account grant reading Secret name+"-sa-key".
func (h *harness) saGrant(name, subject string, mutate ...func(*oauthv1alpha1.GoogleOAuthGrantSpec)) {
	h.T.Helper()
	h.grant(name, append([]func(*oauthv1alpha1.GoogleOAuthGrantSpec){func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.ClientSecretRef, s.RefreshTokenSecretRef = nil, nil
		s.ServiceAccountKeySecretRef = &oauthv1alpha1.ServiceAccountKeySecretReference{Name: name + "-sa-key"}
		s.Subject = subject
		s.Scopes = []string{analytics}
	}}, mutate...)...)
}

func readyMessage(g *oauthv1alpha1.GoogleOAuthGrant) string {
	return meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady).Message
}

// TestServiceAccountOwnToken: a service account's own token lands in the same derived
// Secret, with the same status, as a user's.
func TestServiceAccountOwnToken(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.saKeySecret("own-sa-key")
	h.saGrant("own", "")
	g := h.waitReady("own")
	s := h.derived("own-access-token")
	at := string(s.Data["access_token"])
	if !h.google.AccessTokenValid(at) || h.google.AccessTokenActor(at) != saEmail {
		t.Errorf("derived token valid %v, acting for %q; want the service account", h.google.AccessTokenValid(at), h.google.AccessTokenActor(at))
	}
	for _, k := range []string{"access_token", "token_type", "expiry", "token.json"} {
		if len(s.Data[k]) == 0 {
			t.Errorf("derived Secret lacks %s", k)
		}
	}
	if len(s.Data) != 4 {
		t.Errorf("derived Secret has keys %d, want the 4 of a user grant", len(s.Data))
	}
	if g.Status.Account == nil || g.Status.Account.Email != saEmail {
		t.Errorf("status.account = %+v, want the service account's email", g.Status.Account)
	}
	if strings.Join(g.Status.GrantedScopes, " ") != analytics {
		t.Errorf("grantedScopes %v", g.Status.GrantedScopes)
	}
	h.waitCondition("own", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionTrue, oauthv1alpha1.ReasonAllScopesGranted)
	h.waitEvent("own", "Normal/TokenIssued")
	if n := h.google.ServiceAccountRequests(saEmail); n != 1 {
		t.Errorf("%d assertions presented, want 1", n)
	}
}

// TestServiceAccountDelegation: with spec.subject the token acts as that user; a user the
// service account may not act as is DelegationDenied, not retried, and recovers once an
// admin grants delegation and a refresh is requested.
func TestServiceAccountDelegation(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.AddUser(analyst)
	h.saKeySecret("deleg-sa-key")
	h.saGrant("deleg", analyst)
	g := h.waitCondition("deleg", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonDelegationDenied)
	msg := readyMessage(g)
	for _, want := range []string{`"analyst@example.com"`, "Domain-wide delegation", analytics, "unauthorized_client"} {
		if !strings.Contains(msg, want) {
			t.Errorf("DelegationDenied message lacks %q: %s", want, msg)
		}
	}
	if g.Status.Account == nil || g.Status.Account.Email != analyst {
		t.Errorf("status.account = %+v, want the subject", g.Status.Account)
	}
	h.waitEvent("deleg", "Warning/DelegationDenied")
	n := h.google.ServiceAccountRequests(saEmail)
	h.poke("deleg")
	h.poke("deleg")
	if got := h.google.ServiceAccountRequests(saEmail); got != n {
		t.Errorf("%d more request(s) after DelegationDenied, want none until an input changes", got-n)
	}

	h.google.AllowDelegation(saEmail, analyst, analytics)
	h.requestRefresh("deleg")
	g = h.waitReady("deleg")
	at := string(h.derived("deleg-access-token").Data["access_token"])
	if h.google.AccessTokenActor(at) != analyst {
		t.Errorf("the token acts for %q, want the subject", h.google.AccessTokenActor(at))
	}
	if g.Status.Account == nil || g.Status.Account.Email != analyst {
		t.Errorf("status.account = %+v", g.Status.Account)
	}
}

// TestServiceAccountBadInput: each bad input has its reason, names the Secret and key,
// makes no request, and heals when the Secret or spec is fixed.
func TestServiceAccountBadInput(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.saGrant("bad", "")
	h.waitCondition("bad", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretNotFound)

	h.secret("bad-sa-key", map[string]string{"credentials.json": `{"type": "authorized_user", "client_id": "x", "client_secret": "GOCSPX-not-this-one", "refresh_token": "1//not-this-one"}`})
	g := h.waitCondition("bad", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidServiceAccountKey)
	if msg := readyMessage(g); !strings.Contains(msg, `Secret "bad-sa-key" key "credentials.json"`) || !strings.Contains(msg, `"authorized_user"`) {
		t.Errorf("message: %s", msg)
	}
	h.waitEvent("bad", "Warning/InvalidServiceAccountKey")

	k := h.google.NewServiceAccountKey(saEmail)
	broken := strings.Replace(string(k.JSON), "MII", "XXX", 1)
	h.setSecretData("bad-sa-key", map[string]string{"credentials.json": broken})
	h.Eventually(20*time.Second, "the unparsable private key reported", func() (bool, string) {
		msg := readyMessage(h.GetGrant("bad"))
		return strings.Contains(msg, "private_key"), msg
	})
	if n := h.google.ServiceAccountRequests(saEmail); n != 0 {
		t.Errorf("%d request(s) with a bad key, want none", n)
	}

	h.setSecretData("bad-sa-key", map[string]string{"credentials.json": string(k.JSON)})
	h.waitReady("bad")

	// A subject who is not a user of the domain: InvalidGrant carrying Google's words;
	// fixing spec.subject heals it.
	g = h.GetGrant("bad")
	g.Spec.Subject = "nobody@example.com"
	if err := h.C.Update(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	g = h.waitCondition("bad", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidGrant)
	if msg := readyMessage(g); !strings.Contains(msg, "Invalid email or User ID") {
		t.Errorf("InvalidGrant message lacks Google's description: %s", msg)
	}
	h.google.AllowDelegation(saEmail, analyst, analytics)
	g.Spec.Subject = analyst
	if err := h.C.Update(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	h.waitReady("bad")
	h.waitEvent("bad", "Normal/Recovered")
}

// TestServiceAccountKeyRotation: a key replaced in the Secret makes no request at once (many
// grants may share it) and is used at the next scheduled refresh; a deleted key is
// InvalidGrant "Invalid JWT Signature." and a new key heals it.
func TestServiceAccountKeyRotation(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	// Tokens refreshed 12 s after they are issued: the key replacement and the reconcile it
	// causes must both happen before that to judge that the replacement requested nothing.
	h.google.SetLifetime(20 * time.Second)
	old := h.saKeySecret("rot-sa-key")
	h.saGrant("rot", "", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshBefore = &metav1.Duration{Duration: 8 * time.Second}
	})
	first := h.waitReady("rot")
	n := h.google.ServiceAccountRequests(saEmail)

	fresh := h.google.NewServiceAccountKey(saEmail)
	h.setSecretData("rot-sa-key", map[string]string{"credentials.json": string(fresh.JSON)})
	h.google.DeleteServiceAccountKey(old.ID) // only the new key works from now on
	h.poke("rot")
	got := h.google.ServiceAccountRequests(saEmail) // read first: any request counted came before now
	if now := time.Now(); !now.Before(first.Status.RefreshTime.Time) {
		t.Fatalf("too slow to judge: the key replacement was reconciled at %s, after the scheduled refresh at %s", now.Format(time.RFC3339Nano), first.Status.RefreshTime.Format(time.RFC3339Nano))
	}
	if got != n {
		t.Errorf("replacing the key made %d request(s) before the scheduled refresh, want none", got-n)
	}
	h.Eventually(40*time.Second, "a scheduled refresh with the new key", func() (bool, string) {
		g := h.GetGrant("rot")
		return g.Status.LastRefreshTime.After(first.Status.LastRefreshTime.Time) && meta.IsStatusConditionTrue(g.Status.Conditions, oauthv1alpha1.ConditionReady),
			fmt.Sprintf("lastRefreshTime %v, failures %d", g.Status.LastRefreshTime, g.Status.FailedRefreshAttempts)
	})
	if g := h.GetGrant("rot"); g.Status.FailedRefreshAttempts != 0 {
		t.Errorf("the refresh after rotation failed %d time(s): the old key was used", g.Status.FailedRefreshAttempts)
	}

	// The key is deleted in the console: reported as such at the next refresh.
	h.google.DeleteServiceAccountKey(fresh.ID)
	g := h.waitCondition("rot", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidGrant)
	if msg := readyMessage(g); !strings.Contains(msg, "Invalid JWT Signature.") || !strings.Contains(msg, `Secret "rot-sa-key" key "credentials.json"`) {
		t.Errorf("deleted key message: %s", msg)
	}
	h.waitCondition("rot", oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, oauthv1alpha1.ReasonInvalidGrant)
	third := h.google.NewServiceAccountKey(saEmail)
	h.setSecretData("rot-sa-key", map[string]string{"credentials.json": string(third.JSON)})
	h.waitReady("rot")
	h.waitCondition("rot", oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, oauthv1alpha1.ReasonRefreshSucceeded)
}

// TestServiceAccountRefreshCycles: five refreshes of six-second tokens, the derived Secret
// never holding an expired or rejected token.
func TestServiceAccountRefreshCycles(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetLifetime(6 * time.Second)
	h.saKeySecret("cyc-sa-key")
	h.saGrant("cyc", "", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshBefore = &metav1.Duration{Duration: 3 * time.Second}
	})
	h.waitReady("cyc")
	seen := map[string]bool{}
	h.Eventually(60*time.Second, "five refreshed tokens", func() (bool, string) {
		s := &corev1.Secret{}
		if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "cyc-access-token"}, s); err != nil {
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
	if g := h.GetGrant("cyc"); g.Status.FailedRefreshAttempts != 0 {
		t.Errorf("failures during cycles: %d", g.Status.FailedRefreshAttempts)
	}
}

// TestServiceAccountAssertionUsesInjectedClock: the assertion's iat/exp come from the
// reconciler's clock. Two hours behind Google's, the assertion has expired on arrival and
// Google's time-window complaint is reported as InvalidGrant; on time, the same key works.
func TestServiceAccountAssertionUsesInjectedClock(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	ctx := context.Background()
	c := env.Client
	ns := "c-" + rand.String(8)
	google := fakegoogle.New()
	if err := google.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(google.Close)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now().Add(-2 * time.Hour).Truncate(time.Second))
	r := &controllers.GrantReconciler{
		Client: c, APIReader: c, SecretMeta: liveMetadata{c},
		Tokens: &tokenclient.Endpoint{TokenURL: google.TokenURL(), RevokeURL: google.RevokeURL(), HTTP: tokenclient.NewHTTPClient(5 * time.Second)},
		Clock:  clk, Backoff: schedule.Backoff{Base: 4 * time.Second, Max: time.Minute},
	}
	k := google.NewServiceAccountKey(saEmail)
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "g-sa-key", Namespace: ns}, StringData: map[string]string{"credentials.json": string(k.JSON)}}); err != nil {
		t.Fatal(err)
	}
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: ns}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
		ServiceAccountKeySecretRef: &oauthv1alpha1.ServiceAccountKeySecretReference{Name: "g-sa-key"},
		Scopes:                     []string{analytics},
	}}
	if err := c.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	reconcile := func() *oauthv1alpha1.GoogleOAuthGrant {
		t.Helper()
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(g)}); err != nil {
			t.Fatal(err)
		}
		got := &oauthv1alpha1.GoogleOAuthGrant{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(g), got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := reconcile()
	ready := meta.FindStatusCondition(got.Status.Conditions, oauthv1alpha1.ConditionReady)
	if ready == nil || ready.Reason != oauthv1alpha1.ReasonInvalidGrant || !strings.Contains(ready.Message, "Check your iat and exp values") {
		t.Fatalf("with the clock two hours behind: Ready %+v", ready)
	}

	clk.SetTime(time.Now().Truncate(time.Second))
	got.Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: clk.Now().UTC().Format(time.RFC3339)}
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	got = reconcile()
	if !meta.IsStatusConditionTrue(got.Status.Conditions, oauthv1alpha1.ConditionReady) {
		t.Fatalf("with the clock on time: %+v", got.Status.Conditions)
	}
}

// ServiceAccountToken counts a service account's token requests like refreshes.
func (c countingEndpoint) ServiceAccountToken(ctx context.Context, key credentials.ServiceAccountKey, scopes []string, subject string, now time.Time) (*tokenclient.Token, error) {
	c.n.Add(1)
	return c.TokenEndpoint.ServiceAccountToken(ctx, key, scopes, subject, now)
}
