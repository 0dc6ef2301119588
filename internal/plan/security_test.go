package plan

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

func TestSecurityRevoke(t *testing.T) {
	at := issued.Add(20 * time.Minute)
	for _, tc := range []struct {
		name    string
		obs     Observation
		reason  string
		changed bool
	}{
		{"healthy grant: revoked", observe(issued.Add(21*time.Minute), healthy), ReasonTokenRevokedByGoogle, true},
		{"already revoked for this reason: nothing to write (redelivery, other replica)", observe(issued, func(o *Observation) {
			o.Grant.Status, _ = SecurityRevoke(o.Grant, issued, at, ReasonTokensRevokedByGoogle, "x")
		}), ReasonTokensRevokedByGoogle, false},
		{"revoked for another reason: the newer reason wins", observe(issued, func(o *Observation) {
			o.Grant.Status, _ = SecurityRevoke(o.Grant, issued, at, ReasonTokenRevokedByGoogle, "x")
		}), ReasonAccountDisabled, true},
		{"rejected refresh token already (InvalidGrant): the event's reason", observe(issued, withReady(metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidGrant)), ReasonTokensRevokedByGoogle, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, changed := SecurityRevoke(tc.obs.Grant, tc.obs.Now, at, tc.reason, "Google said so.")
			if changed != tc.changed {
				t.Fatalf("changed = %v, want %v", changed, tc.changed)
			}
			checkCondition(t, st.Conditions, oauthv1alpha1.ConditionReady, "False/"+tc.reason)
			checkCondition(t, st.Conditions, oauthv1alpha1.ConditionRevoked, "True/"+tc.reason)
			if st.ExpiresAt == nil || !st.ExpiresAt.Time.Equal(at) || st.RefreshTime != nil {
				t.Errorf("expiresAt %v (want the event time %v), refreshTime %v (want none)", st.ExpiresAt, at, st.RefreshTime)
			}
			if !PermanentReason(tc.reason) {
				t.Error("a security reason must be permanent")
			}
			if changed {
				msg := meta.FindStatusCondition(st.Conditions, oauthv1alpha1.ConditionReady).Message
				for _, want := range []string{"Google said so.", "withdrawn", "kubectl grantkeeper authorize g"} {
					if !strings.Contains(msg, want) {
						t.Errorf("Ready message %q lacks %q", msg, want)
					}
				}
			}
			// And Decide then makes no request.
			o := tc.obs
			o.Grant = o.Grant.DeepCopy()
			o.Grant.Status = st
			o.HaveToken = false
			if p := Decide(o); p.Refresh {
				t.Errorf("Decide refreshes after the revocation: %s", p.Why)
			}
		})
	}
}

func TestSecurityEnable(t *testing.T) {
	disabled := observe(issued, func(o *Observation) {
		o.Grant.Status, _ = SecurityRevoke(o.Grant, issued, issued, ReasonAccountDisabled, "hijacking")
	})
	st, changed := SecurityEnable(disabled.Grant, issued.Add(time.Hour), "re-enabled")
	if !changed {
		t.Fatal("account-enabled did not lift AccountDisabled")
	}
	checkCondition(t, st.Conditions, oauthv1alpha1.ConditionRevoked, "False/AccountEnabled")
	checkCondition(t, st.Conditions, oauthv1alpha1.ConditionReady, "False/Pending")
	o := disabled
	o.Now = issued.Add(time.Hour)
	o.Grant = o.Grant.DeepCopy()
	o.Grant.Status = st
	o.HaveToken = false
	if p := Decide(o); !p.Refresh {
		t.Error("after account-enabled the grant does not try a refresh")
	}
	for _, reason := range []string{ReasonTokensRevokedByGoogle, ReasonTokenRevokedByGoogle} {
		revoked := observe(issued, func(o *Observation) { o.Grant.Status, _ = SecurityRevoke(o.Grant, issued, issued, reason, "x") })
		if _, changed := SecurityEnable(revoked.Grant, issued, "re-enabled"); changed {
			t.Errorf("account-enabled lifted %s: only AccountDisabled is the account's state", reason)
		}
	}
	if _, changed := SecurityEnable(observe(issued, healthy).Grant, issued, "x"); changed {
		t.Error("account-enabled changed a healthy grant")
	}
}
