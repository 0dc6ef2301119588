package plan

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

// withdrawn is a derived Secret a security event withdrew at the event time at (recorded a
// second later), as internal/derivedsecret.Withdrawn reads it.
func withdrawn(reason, message string, at time.Time) func(*Observation) {
	return func(o *Observation) {
		o.HaveToken, o.Token = false, derivedsecret.Token{}
		o.Withdrawal = &derivedsecret.Withdrawal{Reason: reason, Message: message, At: at, Recorded: at.Add(time.Second)}
	}
}

// The withdrawn Secret is the event's only record: Decide derives Ready=False and
// Revoked=True with its reason and message, makes no request (not even a manual one), and
// reports the status once, whatever the status said before (the receiver writes none).
func TestSecurityWithdrawalDerivesTheStatus(t *testing.T) {
	at := issued.Add(20 * time.Minute)
	for _, tc := range []struct {
		name   string
		obs    Observation
		reason string
		event  bool
	}{
		{"healthy grant: revoked", observe(at.Add(time.Minute), healthy, withdrawn(oauthv1alpha1.ReasonTokenRevokedByGoogle, "Google said so.", at)), oauthv1alpha1.ReasonTokenRevokedByGoogle, true},
		{"a grant that never had a token (the withdrawn Secret is its marker)", observe(at, noToken, withdrawn(oauthv1alpha1.ReasonTokensRevokedByGoogle, "Google said so.", at)), oauthv1alpha1.ReasonTokensRevokedByGoogle, true},
		{"already reported: no second event", observe(at, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonAccountDisabled), withdrawn(oauthv1alpha1.ReasonAccountDisabled, "Google said so (reason: hijacking).", at)), oauthv1alpha1.ReasonAccountDisabled, false},
		{"revoked for another reason: the Secret's (newer) reason wins", observe(at, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonTokenRevokedByGoogle), withdrawn(oauthv1alpha1.ReasonAccountDisabled, "Google said so.", at)), oauthv1alpha1.ReasonAccountDisabled, true},
		{"a pending manual request is not honoured", observe(at, healthy, withdrawn(oauthv1alpha1.ReasonTokenRevokedByGoogle, "Google said so.", at), func(o *Observation) {
			gg(o).Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: at.Format(time.RFC3339)}
		}), oauthv1alpha1.ReasonTokenRevokedByGoogle, true},
		{"rejected refresh token already (InvalidGrant, before the event): the event's reason", observe(at, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidGrant), withdrawn(oauthv1alpha1.ReasonTokensRevokedByGoogle, "Google said so.", at), func(o *Observation) {
			gg(o).Status.LastFailureTime = metaTime(at.Add(-time.Minute))
		}), oauthv1alpha1.ReasonTokensRevokedByGoogle, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(tc.obs)
			if p.Refresh {
				t.Fatalf("Decide refreshes a withdrawn grant: %s", p.Why)
			}
			st := p.Report.Status
			checkCondition(t, st.Conditions, oauthv1alpha1.ConditionReady, "False/"+tc.reason)
			checkCondition(t, st.Conditions, oauthv1alpha1.ConditionRevoked, "True/"+tc.reason)
			checkCondition(t, st.Conditions, oauthv1alpha1.ConditionStalled, "True/"+tc.reason)
			if st.ExpiresAt == nil || !st.ExpiresAt.Time.Equal(at) || st.RefreshTime != nil {
				t.Errorf("expiresAt %v (want the event time %v), refreshTime %v (want none)", st.ExpiresAt, at, st.RefreshTime)
			}
			msg := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady).Message
			for _, want := range []string{"Google said so", "withdrawn", "kubectl grantkeeper authorize g"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Ready message %q lacks %q", msg, want)
				}
			}
			if got := len(p.Report.Events); got != map[bool]int{true: 1, false: 0}[tc.event] {
				t.Errorf("events %v, want one Warning only when Ready changes", p.Report.Events)
			}
			if p.Report.RequeueAfter != 0 {
				t.Errorf("requeue %s: a revoked grant waits for a change", p.Report.RequeueAfter)
			}
		})
	}
}

// What ends a withdrawal's hold: changed inputs (a new consent) make a request; a failed
// request with them is the grant's state from then on; account-enabled lifts AccountDisabled
// only.
func TestSecurityWithdrawalEnds(t *testing.T) {
	at := issued.Add(20 * time.Minute)
	changed := func(o *Observation) { o.Fingerprint = "other" }
	if p := Decide(observe(at, withdrawn(oauthv1alpha1.ReasonTokenRevokedByGoogle, "x", at), changed)); !p.Refresh {
		t.Error("a new refresh token after the event: no request")
	}
	failedSince := observe(at.Add(time.Hour), withdrawn(oauthv1alpha1.ReasonTokenRevokedByGoogle, "x", at), withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidGrant), func(o *Observation) {
		gg(o).Status.LastFailureTime = metaTime(at.Add(time.Minute))
		gg(o).Status.InputsFingerprint = o.Fingerprint
	})
	p := Decide(failedSince)
	if p.Refresh {
		t.Fatalf("refreshes: %s", p.Why)
	}
	checkCondition(t, p.Report.Status.Conditions, oauthv1alpha1.ConditionReady, "False/"+oauthv1alpha1.ReasonInvalidGrant)

	// account-enabled: the Secret says AccountEnabled while the status says AccountDisabled.
	disabled := observe(at, withdrawn(oauthv1alpha1.ReasonAccountDisabled, "hijacking", at))
	gg(&disabled).Status = Decide(disabled).Report.Status
	enabled := disabled
	enabled.Now = at.Add(time.Hour)
	enabled.Withdrawal = &derivedsecret.Withdrawal{Reason: oauthv1alpha1.ReasonAccountEnabled, Message: "re-enabled", At: at, Recorded: at.Add(time.Hour)}
	if p := Decide(enabled); !p.Refresh {
		t.Fatal("after account-enabled the grant does not try a refresh")
	}
	rep := Record(enabled, Outcome{Failure: &tokenerr.Failure{Kind: tokenerr.Transient, Status: 503}, Fingerprint: "fp"})
	checkCondition(t, rep.Status.Conditions, oauthv1alpha1.ConditionRevoked, "False/"+oauthv1alpha1.ReasonAccountEnabled)
	if e := rep.Events; len(e) == 0 || e[0].Reason != oauthv1alpha1.ReasonAccountEnabled {
		t.Errorf("events %v: want AccountEnabled first", e)
	}
	for _, reason := range []string{oauthv1alpha1.ReasonTokensRevokedByGoogle, oauthv1alpha1.ReasonTokenRevokedByGoogle} {
		o := observe(at, withdrawn(reason, "x", at))
		gg(&o).Status = Decide(o).Report.Status
		o.Withdrawal = &derivedsecret.Withdrawal{Reason: oauthv1alpha1.ReasonAccountEnabled, At: at, Recorded: at}
		if p := Decide(o); p.Refresh {
			t.Errorf("an AccountEnabled mark lifted %s: only AccountDisabled is the account's state", reason)
		}
	}
}
