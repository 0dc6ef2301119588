package plan

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

var (
	issued = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	expiry = issued.Add(time.Hour)
)

const (
	analytics = "https://www.googleapis.com/auth/analytics.readonly"
	gmail     = "https://www.googleapis.com/auth/gmail.readonly"
)

func grant() *oauthv1alpha1.GoogleOAuthGrant {
	return &oauthv1alpha1.GoogleOAuthGrant{
		ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns", UID: "uid", Generation: 1},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
			ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "g-oauth-client"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "g-refresh-token"},
		},
		Status: oauthv1alpha1.GrantStatus{InputsFingerprint: "fp"},
	}
}

// observe is a grant whose derived Secret holds a token issued at `issued`, seen at now.
func observe(now time.Time, mutate ...func(*Observation)) Observation {
	o := Observation{Now: now, Grant: grant(), HaveToken: true, Fingerprint: "fp",
		Token: derivedsecret.Token{AccessToken: "ya29.x", Expiry: expiry, RefreshedAt: issued}}
	for _, m := range mutate {
		m(&o)
	}
	return o
}

// serviceAccount makes the grant a service-account grant, acting as subject when set.
func serviceAccount(subject string) func(*Observation) {
	return func(o *Observation) {
		gg(o).Spec = oauthv1alpha1.GoogleOAuthGrantSpec{
			ServiceAccountKeySecretRef: &oauthv1alpha1.ServiceAccountKeySecretReference{Name: "g-sa-key"},
			Subject:                    subject, Scopes: []string{analytics},
		}
	}
}

// healthy: Ready True, reported for the current generation.
func healthy(o *Observation) {
	gg(o).Status.ObservedGeneration = gg(o).Generation
	meta.SetStatusCondition(&gg(o).Status.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: oauthv1alpha1.ReasonTokenValid})
}

func noToken(o *Observation) { o.HaveToken, o.Token = false, derivedsecret.Token{} }

func withReady(status metav1.ConditionStatus, reason string) func(*Observation) {
	return func(o *Observation) {
		meta.SetStatusCondition(&gg(o).Status.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: status, Reason: reason})
	}
}

func backingOff(attempts int32, retryAt time.Time) func(*Observation) {
	return func(o *Observation) {
		gg(o).Status.FailedRefreshAttempts = attempts
		t := metav1.NewTime(retryAt)
		gg(o).Status.RefreshTime = &t
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name            string
		obs             Observation
		refresh         bool
		requeueMin, max time.Duration // 0, 0: no requeue (a watch event wakes us)
		readyReason     string        // when not refreshing: the Ready reason reported ("" = unchanged/Pending)
		readyStatus     metav1.ConditionStatus
	}{
		{name: "fresh token: wait until the refresh time (40m minus jitter)", obs: observe(issued.Add(10 * time.Minute)), requeueMin: 28 * time.Minute, max: 30 * time.Minute},
		{name: "due: refresh", obs: observe(issued.Add(41 * time.Minute)), refresh: true},
		{name: "no token: refresh", obs: observe(issued, noToken), refresh: true},
		{name: "expired token: refresh", obs: observe(expiry.Add(time.Second)), refresh: true},
		{name: "refreshBefore 15m honoured", obs: observe(issued.Add(40*time.Minute), func(o *Observation) {
			gg(o).Spec.RefreshBefore = &metav1.Duration{Duration: 15 * time.Minute}
		}), requeueMin: 3 * time.Minute, max: 5 * time.Minute},
		{name: "refreshBefore longer than the lifetime: not due again at once (cert-manager #4423)", obs: observe(issued.Add(time.Second), func(o *Observation) {
			gg(o).Spec.RefreshBefore = &metav1.Duration{Duration: 2 * time.Hour}
		}), requeueMin: 30 * time.Minute, max: 40 * time.Minute},
		{name: "inputs changed with a fresh token: refresh", obs: observe(issued, func(o *Observation) { o.Fingerprint = "other" }), refresh: true},
		{name: "service account key replaced while healthy: wait for the scheduled refresh (no storm)", obs: observe(issued.Add(10*time.Minute), serviceAccount(""), healthy, func(o *Observation) { o.Fingerprint = "other" }),
			requeueMin: 28 * time.Minute, max: 30 * time.Minute},
		{name: "service account key replaced, due: refresh", obs: observe(issued.Add(41*time.Minute), serviceAccount(""), healthy, func(o *Observation) { o.Fingerprint = "other" }), refresh: true},
		{name: "service account key replaced while not Ready: refresh", obs: observe(issued.Add(10*time.Minute), serviceAccount(""), func(o *Observation) {
			o.Fingerprint = "other"
			meta.SetStatusCondition(&gg(o).Status.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: oauthv1alpha1.ReasonInvalidGrant})
		}), refresh: true},
		{name: "service account spec changed: refresh", obs: observe(issued.Add(10*time.Minute), serviceAccount(""), healthy, func(o *Observation) {
			o.Fingerprint, gg(o).Generation = "other", 2
		}), refresh: true},
		{name: "service account key Secret changed while backing off: refresh", obs: observe(issued.Add(10*time.Minute), serviceAccount(""), healthy, backingOff(1, issued.Add(11*time.Minute)), func(o *Observation) { o.Fingerprint = "other" }), refresh: true},
		{name: "manual request: refresh", obs: observe(issued.Add(time.Minute), func(o *Observation) {
			gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: issued.Add(time.Minute).Format(time.RFC3339)}
		}), refresh: true},
		{name: "manual request already handled: no refresh", obs: observe(issued.Add(time.Minute), func(o *Observation) {
			v := issued.Add(time.Minute).Format(time.RFC3339)
			gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: v}
			gg(o).Status.LastHandledRefreshRequest = v
		}), requeueMin: 28 * time.Minute, max: 39 * time.Minute},
		{name: "manual request older than the last refresh: no refresh", obs: observe(issued.Add(time.Minute), func(o *Observation) {
			gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: issued.Add(-time.Minute).Format(time.RFC3339)}
			last := metav1.NewTime(issued)
			gg(o).Status.LastRefreshTime = &last
		}), requeueMin: 28 * time.Minute, max: 39 * time.Minute},
		{name: "manual request beats a permanent failure", obs: observe(issued, noToken, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidGrant), func(o *Observation) {
			gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: issued.Format(time.RFC3339)}
		}), refresh: true},
		{name: "revoked by a security event: no request, not even a manual one", obs: observe(issued, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonTokenRevokedByGoogle), withdrawn(oauthv1alpha1.ReasonTokenRevokedByGoogle, "x", issued), func(o *Observation) {
			gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: issued.Format(time.RFC3339)}
		}), readyReason: oauthv1alpha1.ReasonTokenRevokedByGoogle, readyStatus: metav1.ConditionFalse},
		{name: "token withdrawn by a security event, the status not written yet: no request, the status derived from the Secret", obs: observe(issued, healthy, withdrawn(oauthv1alpha1.ReasonTokenRevokedByGoogle, "x", issued.Add(-2*time.Second))),
			readyReason: oauthv1alpha1.ReasonTokenRevokedByGoogle, readyStatus: metav1.ConditionFalse},
		{name: "token withdrawn, refresh-token Secret replaced: refresh", obs: observe(issued, withdrawn(oauthv1alpha1.ReasonTokenRevokedByGoogle, "x", issued), func(o *Observation) { o.Fingerprint = "other" }),
			refresh: true},
		{name: "revoked by a security event whose Secret was deleted, refresh-token Secret replaced: refresh", obs: observe(issued, noToken, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonTokensRevokedByGoogle), func(o *Observation) { o.Fingerprint = "other" }),
			refresh: true},
		{name: "permanent failure (InvalidGrant), no token: wait for a watch event only", obs: observe(issued, noToken, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidGrant)),
			readyStatus: metav1.ConditionFalse, readyReason: oauthv1alpha1.ReasonInvalidGrant},
		{name: "permanent failure (SecretKeyMissing), token valid: look again at expiry only", obs: observe(issued.Add(50*time.Minute), withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonSecretKeyMissing)),
			requeueMin: 10 * time.Minute, max: 10 * time.Minute, readyStatus: metav1.ConditionFalse, readyReason: oauthv1alpha1.ReasonSecretKeyMissing},
		{name: "permanent failure, inputs changed: try again", obs: observe(issued, noToken, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClient), func(o *Observation) { o.Fingerprint = "new" }), refresh: true},
		{name: "TokenEndpointError is not permanent: refresh", obs: observe(issued, noToken, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonTokenEndpointError)), refresh: true},
		{name: "in backoff with a valid token: wait for the retry", obs: observe(issued.Add(45*time.Minute), withReady(metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid), backingOff(2, issued.Add(46*time.Minute))),
			requeueMin: time.Minute, max: time.Minute, readyStatus: metav1.ConditionTrue, readyReason: oauthv1alpha1.ReasonTokenValid},
		{name: "in backoff past expiry: look again at expiry", obs: observe(expiry.Add(-10*time.Second), withReady(metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid), backingOff(5, expiry.Add(5*time.Minute))),
			requeueMin: 10 * time.Second, max: 10 * time.Second, readyStatus: metav1.ConditionTrue, readyReason: oauthv1alpha1.ReasonTokenValid},
		{name: "in backoff, token expired meanwhile: Ready False TokenEndpointError, retry as planned", obs: observe(expiry.Add(time.Second), withReady(metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid), backingOff(5, expiry.Add(5*time.Minute))),
			requeueMin: 5*time.Minute - time.Second, max: 5*time.Minute - time.Second, readyStatus: metav1.ConditionFalse, readyReason: oauthv1alpha1.ReasonTokenEndpointError},
		{name: "in backoff without a token: no request before the retry time", obs: observe(issued, noToken, backingOff(1, issued.Add(8*time.Second))), requeueMin: 8 * time.Second, max: 8 * time.Second,
			readyStatus: metav1.ConditionFalse, readyReason: oauthv1alpha1.ReasonPending},
		{name: "backoff over: refresh", obs: observe(issued.Add(45*time.Minute), backingOff(2, issued.Add(44*time.Minute))), refresh: true},
		{name: "target conflict recorded (Stalled), the name free again: refresh", obs: observe(issued, noToken, func(o *Observation) {
			c := gg(o).DeepCopy()
			c.Status = Decide(observe(issued, noToken, func(o *Observation) {
				o.Conflict = &derivedsecret.ConflictError{Name: "g-access-token", Owner: "no controller"}
			})).Report.Status
			if !Stalled(c.Status) {
				panic("a target conflict is not Stalled")
			}
			o.Grant = c
		}), refresh: true},
		{name: "target conflict: nothing, even without a token, with inputs changed and a manual request", obs: observe(issued, noToken, func(o *Observation) {
			o.Conflict = &derivedsecret.ConflictError{Name: "g-access-token", Owner: "no controller"}
			o.Fingerprint = "new"
			gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: issued.Format(time.RFC3339)}
		}), readyStatus: metav1.ConditionFalse, readyReason: oauthv1alpha1.ReasonTargetSecretConflict},
		{name: "a requeue is never under a second, even when the refresh time is now", obs: observe(issued.Add(2*time.Minute), backingOff(1, issued.Add(2*time.Minute+time.Millisecond))),
			requeueMin: time.Second, max: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := gg(&tc.obs).DeepCopy()
			p := Decide(tc.obs)
			if p.Refresh != tc.refresh {
				t.Fatalf("Refresh = %v (%s), want %v", p.Refresh, p.Why, tc.refresh)
			}
			if gg(&tc.obs).Status.InputsFingerprint != before.Status.InputsFingerprint || len(gg(&tc.obs).Status.Conditions) != len(before.Status.Conditions) {
				t.Error("Decide modified the observed grant")
			}
			if p.Refresh {
				if p.Why == "" {
					t.Error("a refresh without a reason")
				}
				return
			}
			checkRequeue(t, p.Report.RequeueAfter, tc.requeueMin, tc.max)
			if tc.readyReason != "" {
				ready := meta.FindStatusCondition(p.Report.Status.Conditions, oauthv1alpha1.ConditionReady)
				if ready == nil || ready.Status != tc.readyStatus || ready.Reason != tc.readyReason {
					t.Errorf("Ready = %+v, want %s/%s", ready, tc.readyStatus, tc.readyReason)
				}
			}
			if !p.Refresh {
				// Stalled is always reported, True exactly when Ready records something a
				// person must change (kubectl wait --for=condition=Stalled=false needs it).
				st := p.Report.Status
				ready := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
				want := "False/" + oauthv1alpha1.ReasonProgressing
				if ready.Status == metav1.ConditionFalse && (PermanentReason(ready.Reason) || ready.Reason == oauthv1alpha1.ReasonTargetSecretConflict) {
					want = "True/" + ready.Reason
				}
				checkCondition(t, st.Conditions, oauthv1alpha1.ConditionStalled, want)
			}
		})
	}
}

func checkRequeue(t *testing.T, got, min, max time.Duration) {
	t.Helper()
	if min == 0 && max == 0 {
		if got != 0 {
			t.Errorf("RequeueAfter = %v, want none (a watch event wakes the grant)", got)
		}
		return
	}
	if got < schedule.MinDelay {
		t.Errorf("RequeueAfter = %v: zero, negative or sub-second requeues loop hot", got)
	}
	if got < min || got > max {
		t.Errorf("RequeueAfter = %v, want within [%v, %v]", got, min, max)
	}
}

func TestDecideStatusFollowsTheSecret(t *testing.T) {
	// A status write lost after the Secret was written: the next look brings the status in line.
	o := observe(issued.Add(time.Minute))
	p := Decide(o)
	st := p.Report.Status
	if st.ExpiresAt == nil || !st.ExpiresAt.Time.Equal(expiry) || st.LastRefreshTime == nil || !st.LastRefreshTime.Time.Equal(issued) || st.RefreshTime == nil {
		t.Fatalf("status %+v does not follow the Secret's token (issued %s, expires %s)", st, issued, expiry)
	}
	if st.ObservedGeneration != 1 || st.AccessTokenSecretName != "g-access-token" {
		t.Errorf("observedGeneration %d, accessTokenSecretName %q", st.ObservedGeneration, st.AccessTokenSecretName)
	}
}

func token(scopes ...string) *Issued {
	return &Issued{Expiry: issued.Add(2 * time.Hour), Scopes: scopes}
}

// TestRecord covers every row of the README's conditions table that an outcome produces.
func TestRecord(t *testing.T) {
	now := issued.Add(50 * time.Minute)
	for _, tc := range []struct {
		name       string
		obs        Observation
		out        Outcome
		ready      string // status/reason
		revoked    string // status/reason, "" when absent
		scopes     string // status/reason, "" when absent
		retry      bool   // status.refreshTime set
		requeueMin time.Duration
		requeueMax time.Duration
		events     []string // Type/Reason
		message    []string // substrings of Ready's message
		account    string   // status.account.email
	}{
		{name: "first token", obs: observe(now, noToken), out: Outcome{Token: token(analytics)},
			ready: "True/TokenValid", revoked: "False/RefreshSucceeded", retry: true, requeueMin: 44 * time.Minute, requeueMax: 47 * time.Minute, events: []string{"Normal/TokenIssued"}},
		{name: "routine refresh: no event", obs: observe(now, withReady(metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid), func(o *Observation) {
			e := metav1.NewTime(expiry)
			gg(o).Status.ExpiresAt = &e
		}), out: Outcome{Token: token()}, ready: "True/TokenValid", revoked: "False/RefreshSucceeded", retry: true, requeueMin: 44 * time.Minute, requeueMax: 47 * time.Minute},
		{name: "recovered after failures", obs: observe(now, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonTokenEndpointError), backingOff(3, now), func(o *Observation) {
			e := metav1.NewTime(expiry)
			gg(o).Status.ExpiresAt = &e
		}), out: Outcome{Token: token()}, ready: "True/TokenValid", revoked: "False/RefreshSucceeded", retry: true, requeueMin: 44 * time.Minute, requeueMax: 47 * time.Minute, events: []string{"Normal/Recovered"}},
		{name: "scopes all granted", obs: observe(now, noToken, func(o *Observation) { gg(o).Spec.Scopes = []string{analytics} }), out: Outcome{Token: token(analytics, "openid")},
			ready: "True/TokenValid", revoked: "False/RefreshSucceeded", scopes: "True/AllScopesGranted", retry: true, requeueMin: 44 * time.Minute, requeueMax: 47 * time.Minute, events: []string{"Normal/TokenIssued"}},
		{name: "scopes missing", obs: observe(now, noToken, func(o *Observation) {
			gg(o).Spec.Scopes = []string{analytics, "https://www.googleapis.com/auth/drive"}
		}), out: Outcome{Token: token(analytics)},
			ready: "True/TokenValid", revoked: "False/RefreshSucceeded", scopes: "False/MissingScopes", retry: true, requeueMin: 44 * time.Minute, requeueMax: 47 * time.Minute, events: []string{"Normal/TokenIssued"}},
		{name: "invalid_grant: Revoked, no retry, the command to fix it", obs: observe(now, func(o *Observation) { gg(o).Spec.Scopes = []string{analytics} }),
			out:   Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.InvalidGrant, Status: 400, Code: "invalid_grant", Description: "Token has been expired or revoked."}},
			ready: "False/InvalidGrant", revoked: "True/InvalidGrant", events: []string{"Warning/InvalidGrant"},
			message: []string{"kubectl grantkeeper authorize g -n ns --client-secret-file client_secret.json --scopes " + analytics, `Secret "g-refresh-token" key "refresh_token"`}},
		{name: "invalid_client: no retry", obs: observe(now), out: Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.InvalidClient, Status: 401, Code: "invalid_client"}},
			ready: "False/InvalidClient", events: []string{"Warning/InvalidClient"}, message: []string{`Secret "g-oauth-client"`}},
		// Issue 28: a token with scopes outside spec.scopes is not published; nothing retries it.
		{name: "excess scopes: ExcessScopes naming them, no retry", obs: observe(now, func(o *Observation) { gg(o).Spec.Scopes = []string{analytics} }),
			out:   Outcome{Token: token(analytics, gmail, "openid"), ExcessScopes: []string{gmail}},
			ready: "False/ExcessScopes", revoked: "False/RefreshSucceeded", events: []string{"Warning/ExcessScopes"},
			message: []string{"outside spec.scopes: " + gmail, "was not published", "kubectl grantkeeper authorize g -n ns", "https://myaccount.google.com/permissions"}},
		{name: "excess scopes with consent links: the message points at the link", obs: observe(now, func(o *Observation) {
			gg(o).Spec.Scopes, o.ConsentEnabled = []string{analytics}, true
		}), out: Outcome{Token: token(analytics, gmail), ExcessScopes: []string{gmail}},
			ready: "False/ExcessScopes", revoked: "False/RefreshSucceeded", events: []string{"Warning/ExcessScopes"}, message: []string{"status.consentURL"}},
		// A refresh asks for spec.scopes: invalid_scope means the refresh token lacks some.
		{name: "invalid_scope for spec.scopes: TokenRequestRejected and MissingScopes", obs: observe(now, noToken, func(o *Observation) {
			gg(o).Spec.Scopes = []string{analytics, gmail}
		}), out: Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.Rejected, Status: 400, Code: "invalid_scope"}},
			ready: "False/TokenRequestRejected", scopes: "False/MissingScopes", events: []string{"Warning/RefreshFailed"}, message: []string{"does not cover all of them"}},
		{name: "other refusal: TokenRequestRejected, no retry", obs: observe(now), out: Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.Rejected, Status: 400, Code: "invalid_scope"}},
			ready: "False/TokenRequestRejected", events: []string{"Warning/RefreshFailed"}},
		{name: "transient with a valid token: Ready stays True, retry with backoff", obs: observe(now), out: Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.Transient, Status: 503}},
			ready: "True/TokenValid", retry: true, requeueMin: 2 * time.Second, requeueMax: 6 * time.Second, events: []string{"Warning/RefreshFailed"}, message: []string{"Refreshing failed 1 time(s)"}},
		{name: "transient honours Retry-After", obs: observe(now), out: Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.Transient, Status: 429, RetryAfter: 3 * time.Minute}},
			ready: "True/TokenValid", retry: true, requeueMin: 3 * time.Minute, requeueMax: 3*time.Minute + time.Second, events: []string{"Warning/RefreshFailed"}, message: []string{"Retry-After 3m0s"}},
		{name: "transient, retry after expiry: look again at expiry", obs: observe(expiry.Add(-2 * time.Second)), out: Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.Transient, Status: 503}},
			ready: "True/TokenValid", retry: true, requeueMin: time.Second, requeueMax: 2 * time.Second, events: []string{"Warning/RefreshFailed"}},
		{name: "transient without a valid token: TokenEndpointError", obs: observe(expiry.Add(time.Minute)), out: Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.Transient, Detail: "connection refused"}},
			ready: "False/TokenEndpointError", retry: true, requeueMin: 2 * time.Second, requeueMax: 6 * time.Second, events: []string{"Warning/RefreshFailed"}, message: []string{"connection refused"}},
		{name: "Secret missing: SecretNotFound", obs: observe(now, noToken), out: Outcome{Problem: &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound, Message: `Secret "x" not found`}},
			ready: "False/SecretNotFound", events: []string{"Warning/SecretNotFound"}},
		{name: "key missing: SecretKeyMissing", obs: observe(now), out: Outcome{Problem: &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretKeyMissing, Message: "no key"}},
			ready: "False/SecretKeyMissing", events: []string{"Warning/SecretKeyMissing"}},
		{name: "service account: first token, account email, scopes as requested", obs: observe(now, noToken, serviceAccount("")),
			out:   Outcome{Token: token(analytics), Account: "reporter@p.iam.gserviceaccount.com"},
			ready: "True/TokenValid", revoked: "False/RefreshSucceeded", scopes: "True/AllScopesGranted", retry: true, requeueMin: 44 * time.Minute, requeueMax: 47 * time.Minute, events: []string{"Normal/TokenIssued"},
			account: "reporter@p.iam.gserviceaccount.com"},
		{name: "service account: deleted key is InvalidGrant naming the key Secret", obs: observe(now, serviceAccount("")),
			out:   Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.InvalidGrant, Status: 400, Code: "invalid_grant", Description: "Invalid JWT Signature."}, Account: "reporter@p.iam.gserviceaccount.com"},
			ready: "False/InvalidGrant", revoked: "True/InvalidGrant", scopes: "", events: []string{"Warning/InvalidGrant"},
			message: []string{"Invalid JWT Signature.", `Secret "g-sa-key" key "credentials.json"`}, account: "reporter@p.iam.gserviceaccount.com"},
		{name: "service account: delegation refused, no retry, where an admin grants it", obs: observe(now, serviceAccount("analyst@example.com")),
			out:   Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.DelegationDenied, Status: 401, Code: "unauthorized_client"}, Account: "analyst@example.com"},
			ready: "False/DelegationDenied", events: []string{"Warning/DelegationDenied"},
			message: []string{`acting as "analyst@example.com"`, "Domain-wide delegation", analytics}, account: "analyst@example.com"},
		{name: "service account: invalid_client names the key Secret", obs: observe(now, serviceAccount("")),
			out:   Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.InvalidClient, Status: 401, Code: "invalid_client"}},
			ready: "False/InvalidClient", events: []string{"Warning/InvalidClient"}, message: []string{`Secret "g-sa-key" key "credentials.json"`}},
		{name: "service account: bad key is InvalidServiceAccountKey", obs: observe(now, serviceAccount("")),
			out:   Outcome{Problem: &credentials.Problem{Reason: oauthv1alpha1.ReasonInvalidServiceAccountKey, Message: "bad key"}},
			ready: "False/InvalidServiceAccountKey", events: []string{"Warning/InvalidServiceAccountKey"}},
		{name: "user grant with openid: account from the ID token", obs: observe(now, noToken),
			out:   Outcome{Token: token(analytics), Identity: &oauthv1alpha1.AccountStatus{Email: "ana@example.com", Sub: "1234"}},
			ready: "True/TokenValid", revoked: "False/RefreshSucceeded", retry: true, requeueMin: 44 * time.Minute, requeueMax: 47 * time.Minute, events: []string{"Normal/TokenIssued"},
			account: "ana@example.com"},
		{name: "identity without sub is ignored", obs: observe(now, noToken),
			out:   Outcome{Token: token(analytics), Identity: &oauthv1alpha1.AccountStatus{Email: "ana@example.com"}},
			ready: "True/TokenValid", revoked: "False/RefreshSucceeded", retry: true, requeueMin: 44 * time.Minute, requeueMax: 47 * time.Minute, events: []string{"Normal/TokenIssued"}},
		{name: "same problem again: no second event", obs: observe(now, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClientSecret)),
			out: Outcome{Problem: &credentials.Problem{Reason: oauthv1alpha1.ReasonInvalidClientSecret, Message: "bad JSON"}}, ready: "False/InvalidClientSecret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.out.Fingerprint = "used"
			rep := Record(tc.obs, tc.out)
			st := rep.Status
			if st.InputsFingerprint != "used" {
				t.Errorf("inputsFingerprint %q: the outcome must answer the inputs used", st.InputsFingerprint)
			}
			checkCondition(t, st.Conditions, oauthv1alpha1.ConditionReady, tc.ready)
			checkCondition(t, st.Conditions, oauthv1alpha1.ConditionRevoked, tc.revoked)
			checkCondition(t, st.Conditions, oauthv1alpha1.ConditionScopesGranted, tc.scopes)
			if (st.RefreshTime != nil) != tc.retry {
				t.Errorf("refreshTime = %v, want set: %v", st.RefreshTime, tc.retry)
			}
			checkRequeue(t, rep.RequeueAfter, tc.requeueMin, tc.requeueMax)
			var evs []string
			for _, e := range rep.Events {
				evs = append(evs, e.Type+"/"+e.Reason)
			}
			if strings.Join(evs, ",") != strings.Join(tc.events, ",") {
				t.Errorf("events %v, want %v", evs, tc.events)
			}
			if got := ""; st.Account != nil || tc.account != "" {
				if st.Account != nil {
					got = st.Account.Email
				}
				if got != tc.account {
					t.Errorf("status.account.email %q, want %q", got, tc.account)
				}
			}
			ready := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady)
			for _, m := range tc.message {
				if !strings.Contains(ready.Message, m) {
					t.Errorf("Ready message %q lacks %q", ready.Message, m)
				}
			}
		})
	}
}

func checkCondition(t *testing.T, conds []metav1.Condition, typ, want string) {
	t.Helper()
	c := meta.FindStatusCondition(conds, typ)
	got := ""
	if c != nil {
		got = string(c.Status) + "/" + c.Reason
	}
	if got != want {
		t.Errorf("%s = %q, want %q", typ, got, want)
	}
}

func TestRecordFailureCountsAndManualRequest(t *testing.T) {
	now := issued.Add(50 * time.Minute)
	o := observe(now, backingOff(2, now), func(o *Observation) {
		gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: now.Format(time.RFC3339)}
	})
	rep := Record(o, Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.Transient, Status: 500}})
	if rep.Status.FailedRefreshAttempts != 3 || rep.Status.LastFailureTime == nil {
		t.Errorf("failedRefreshAttempts %d, lastFailureTime %v: want 3 and set", rep.Status.FailedRefreshAttempts, rep.Status.LastFailureTime)
	}
	if rep.Status.LastHandledRefreshRequest != now.Format(time.RFC3339) {
		t.Errorf("the manual request was not marked handled: it would be retried in a loop")
	}
	// A success resets the count.
	rep = Record(o, Outcome{Token: token()})
	if rep.Status.FailedRefreshAttempts != 0 {
		t.Errorf("failedRefreshAttempts %d after a success", rep.Status.FailedRefreshAttempts)
	}
}

// TestPermanence: permanence comes from the failure classification and from bad input only.
func TestPermanence(t *testing.T) {
	for _, k := range tokenerr.Kinds {
		if got := PermanentReason(ReasonFor(k)); got != k.Permanent() {
			t.Errorf("PermanentReason(%s) = %v, want %v (the kind's own Permanent)", ReasonFor(k), got, k.Permanent())
		}
	}
	for _, r := range credentials.ProblemReasons {
		if !PermanentReason(r) {
			t.Errorf("bad input %s must not be retried without a change", r)
		}
	}
	for _, r := range ClientReasons {
		if !PermanentReason(r) {
			t.Errorf("client problem %s must not be retried without a change", r)
		}
	}
	if !PermanentReason(oauthv1alpha1.ReasonExcessScopes) {
		t.Error("ExcessScopes must not be retried without a change: Google would answer the same")
	}
	for _, r := range []string{oauthv1alpha1.ReasonTokenValid, oauthv1alpha1.ReasonTargetSecretConflict, oauthv1alpha1.ReasonPending, oauthv1alpha1.ReasonTokenEndpointError} {
		if PermanentReason(r) {
			t.Errorf("%s reported as a permanent failure", r)
		}
	}
}

func TestReauthorizeCommand(t *testing.T) {
	g := grant()
	g.Spec.Scopes = []string{analytics, "openid"}
	if got, want := ReauthorizeCommand(g), "kubectl grantkeeper authorize g -n ns --client-secret-file client_secret.json --scopes "+analytics+",openid"; got != want {
		t.Errorf("default names:\n got %s\nwant %s", got, want)
	}
	g.Spec.Scopes = nil
	g.Status.GrantedScopes = []string{"email"}
	g.Spec.RefreshTokenSecretRef.Name, g.Spec.ClientSecretRef.Name = "rt", "client"
	if got, want := ReauthorizeCommand(g), "kubectl grantkeeper authorize g -n ns --client-secret-file client_secret.json --scopes email --secret-name rt --client-secret-name client"; got != want {
		t.Errorf("custom names:\n got %s\nwant %s", got, want)
	}
	adc := grant()
	adc.Spec.ClientSecretRef, adc.Spec.RefreshTokenSecretRef = nil, nil
	adc.Spec.AuthorizedUserSecretRef = &oauthv1alpha1.AuthorizedUserSecretReference{Name: "adc"}
	if got := ReauthorizeCommand(adc); !strings.HasSuffix(got, "--scopes SCOPE[,SCOPE...] -o adc --secret-name adc") {
		t.Errorf("authorized-user form: %s", got)
	}
	shared := grant()
	shared.Spec.ClientSecretRef, shared.Spec.ClientRef = nil, &oauthv1alpha1.ClientReference{Kind: oauthv1alpha1.KindClusterGoogleOAuthClient, Name: "analytics-app"}
	if got, want := ReauthorizeCommand(shared), "kubectl grantkeeper authorize g -n ns --cluster-client analytics-app --scopes SCOPE[,SCOPE...]"; got != want {
		t.Errorf("cluster client:\n got %s\nwant %s", got, want)
	}
	shared.Spec.ClientRef = &oauthv1alpha1.ClientReference{Name: "local"}
	if got := ReauthorizeCommand(shared); !strings.Contains(got, " --client local --scopes") {
		t.Errorf("client with the default kind: %s", got)
	}
}

// TestRecordClientID: status.clientID follows the client of each token request, failed or
// not, and stays when no request was made.
func TestRecordClientID(t *testing.T) {
	now := issued.Add(50 * time.Minute)
	withID := func(o *Observation) { gg(o).Status.ClientID = "old-id" }
	for _, tc := range []struct {
		name string
		out  Outcome
		want string
	}{
		{"token", Outcome{Token: token(), ClientID: "new-id"}, "new-id"},
		{"refused", Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.InvalidClient, Status: 401, Code: "invalid_client"}, ClientID: "new-id"}, "new-id"},
		{"service account", Outcome{Token: token()}, ""},
		{"no request (bad input)", Outcome{Problem: &credentials.Problem{Reason: oauthv1alpha1.ReasonSecretNotFound, Message: "x"}}, "old-id"},
	} {
		if got := Record(observe(now, withID), tc.out).Status.ClientID; got != tc.want {
			t.Errorf("%s: status.clientID %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Record carries act's own events and, after a refresh whose rotated refresh token act
// stored, drops SecretsWritable=False (the Secret was writable after all).
func TestRecordRotatedAndActEvents(t *testing.T) {
	o := observe(issued.Add(41*time.Minute), healthy, func(o *Observation) {
		gg(o).Status.Conditions = append(gg(o).Status.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionSecretsWritable, Status: metav1.ConditionFalse, Reason: oauthv1alpha1.ReasonSecretNotOwned})
	})
	act := Event{Type: "Warning", Reason: "RefreshTokenChanged", Action: "WriteBack"}
	for _, rotated := range []bool{false, true} {
		tok := token(analytics)
		tok.Rotated = rotated
		rep := Record(o, Outcome{Token: tok, Fingerprint: "fp", Events: []Event{act}})
		if got := meta.FindStatusCondition(rep.Status.Conditions, oauthv1alpha1.ConditionSecretsWritable) != nil; got == rotated {
			t.Errorf("rotated %v: SecretsWritable present = %v", rotated, got)
		}
		if len(rep.Events) == 0 || rep.Events[0] != act {
			t.Errorf("rotated %v: events %v, want act's first", rotated, rep.Events)
		}
		checkCondition(t, rep.Status.Conditions, oauthv1alpha1.ConditionStalled, "False/"+oauthv1alpha1.ReasonProgressing)
	}
}

// gg is the observation's grant as the GoogleOAuthGrant these tables build.
func gg(o *Observation) *oauthv1alpha1.GoogleOAuthGrant {
	return o.Grant.(*oauthv1alpha1.GoogleOAuthGrant)
}
