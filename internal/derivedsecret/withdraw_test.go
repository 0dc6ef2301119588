package derivedsecret

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// What Withdraw and Enable write is what Withdrawn reads back, and publishing a token
// drops it (a successful refresh with new inputs ends the withdrawal).
func TestWithdrawalRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := &corev1.Secret{}
	Apply(s, "g", tok)
	if Withdrawn(s) != nil {
		t.Fatal("a Secret holding a token reads as withdrawn")
	}
	Apply(s, "g", Token{Expiry: at, RefreshedAt: at.Add(-time.Second)})
	mark(s, oauthv1alpha1.ReasonAccountDisabled, "Google disabled the account (reason: hijacking)."+strings.Repeat("x", 1000), at.Add(time.Second))
	w := Withdrawn(s)
	if w == nil || w.Reason != oauthv1alpha1.ReasonAccountDisabled || !w.At.Equal(at) || !w.Recorded.Equal(at.Add(time.Second)) ||
		!strings.Contains(w.Message, "hijacking") || len(w.Message) > maxMessage {
		t.Fatalf("Withdrawn = %+v", w)
	}
	if _, ok := Read(s, "g"); ok {
		t.Error("a withdrawn Secret reads as holding a token")
	}
	Apply(s, "g", tok)
	if Withdrawn(s) != nil || s.Annotations[WithdrawnReasonAnnotation] != "" || s.Annotations[WithdrawnMessageAnnotation] != "" {
		t.Errorf("publishing a token kept the withdrawal: %v", s.Annotations)
	}
	// A hand-made empty token without our annotation is not a withdrawal.
	Apply(s, "g", Token{Expiry: at, RefreshedAt: at.Add(-time.Second)})
	if Withdrawn(s) != nil {
		t.Error("an empty token without the reason reads as withdrawn")
	}
}
