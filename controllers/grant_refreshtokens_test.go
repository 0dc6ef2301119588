package controllers_test

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
)

// TestRoutineRefreshReadsNoSecret (issue 34): a routine refresh takes the refresh token from
// the record of the Secret's version, not from a live read (two API requests per refresh, not
// three); a token the user replaces is read live and used at once, and the old one never again.
func TestRoutineRefreshReadsNoSecret(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.google.SetLifetime(6 * time.Second)
	first := h.credentials("rec")
	h.grant("rec", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshBefore = &metav1.Duration{Duration: 3 * time.Second}
	})
	h.waitReady("rec")
	h.Eventually(30*time.Second, "three token requests", func() (bool, string) {
		n := len(h.google.RequestTimes(first))
		return n >= 3, fmt.Sprintf("%d", n)
	})
	if n := h.liveReads.of("rec-refresh-token"); n != 1 {
		t.Errorf("live reads of the refresh-token Secret over %d refreshes: %d, want 1 (the first)", len(h.google.RequestTimes(first)), n)
	}

	// The user puts a new refresh token in the Secret and revokes the old one.
	second := h.google.NewRefreshToken(clientID, analytics)
	h.setSecretData("rec-refresh-token", map[string]string{"refresh_token": second})
	changed := time.Now()
	h.google.RevokeRefreshToken(first)
	h.Eventually(30*time.Second, "a token from the new refresh token", func() (bool, string) {
		s := h.derived("rec-access-token")
		at := string(s.Data[oauthv1alpha1.AccessTokenKey])
		return len(h.google.RequestTimes(second)) > 0 && h.google.AccessTokenValid(at), "not yet"
	})
	h.Eventually(30*time.Second, "two refreshes with the new token", func() (bool, string) {
		n := len(h.google.RequestTimes(second))
		return n >= 2, fmt.Sprintf("%d", n)
	})
	for _, at := range h.google.RequestTimes(first) {
		if at.After(changed.Add(time.Second)) {
			t.Errorf("a token request used the replaced refresh token at %s, %s after the Secret changed", at.Format(time.RFC3339Nano), at.Sub(changed))
		}
	}
	if n := h.liveReads.of("rec-refresh-token"); n != 2 {
		t.Errorf("live reads of the refresh-token Secret: %d, want 2 (once per version)", n)
	}
	g := h.waitReady("rec")
	if g.Status.FailedRefreshAttempts != 0 {
		t.Errorf("failed refresh attempts: %d", g.Status.FailedRefreshAttempts)
	}
}

// TestStatusWriteAfterUserEdit: the status is written as an update at the cached version;
// a grant a user edited since (an annotation) makes that conflict, and the status is written
// anyway, the user's edit kept.
func TestStatusWriteAfterUserEdit(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.credentials("edit")
	h.grant("edit")
	h.waitReady("edit")
	h.stopManager()
	stale := h.GetGrant("edit")
	h.annotate("edit", "example.com/note", "kept")
	r := &controllers.GrantReconciler{Client: env.Client, Clock: clock.RealClock{}}
	st := stale.Status
	expiry := metav1.NewTime(time.Now().Add(time.Hour).Truncate(time.Second))
	st.ExpiresAt = &expiry
	if err := r.WriteStatus(h.Ctx, stale, st); err != nil {
		t.Fatalf("status write after a user's edit: %v", err)
	}
	g := h.GetGrant("edit")
	if g.Status.ExpiresAt == nil || !g.Status.ExpiresAt.Equal(&expiry) {
		t.Errorf("status.expiresAt = %v, want %v", g.Status.ExpiresAt, expiry)
	}
	if g.Annotations["example.com/note"] != "kept" {
		t.Errorf("the user's annotation was lost: %v", g.Annotations)
	}
}
