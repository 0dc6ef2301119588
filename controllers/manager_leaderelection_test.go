package controllers_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// TestLeaderElection: of two managers only the leader requests tokens; when the leader dies
// without releasing its Lease, the other takes over within the lease time and no refresh is
// missed: the derived Secret never holds an expired token.
func TestLeaderElection(t *testing.T) {
	h := newHarness(t)
	h.stopManager() // this test runs its own pair
	h.google.SetLifetime(12 * time.Second)
	h.credentials("le")
	a := h.newManager(managerOptions{leaderElection: true})
	h.grant("le", func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.RefreshBefore = &metav1.Duration{Duration: 7 * time.Second}
	})
	h.waitReady("le")
	b := h.newManager(managerOptions{leaderElection: true})

	neverExpired := func() (string, bool) {
		s := &corev1.Secret{}
		if err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: "le-access-token"}, s); err != nil {
			t.Fatalf("derived Secret: %v", err)
		}
		expiry, err := time.Parse(time.RFC3339, string(s.Data["expiry"]))
		if err != nil || !time.Now().Before(expiry) {
			t.Fatalf("the derived Secret held an expired token (expiry %q)", s.Data["expiry"])
		}
		return string(s.Data["access_token"]), true
	}

	h.Eventually(30*time.Second, "the leader to refresh twice", func() (bool, string) {
		neverExpired()
		return a.requests.Load() >= 3, fmt.Sprintf("leader %d, follower %d requests", a.requests.Load(), b.requests.Load())
	})
	if n := b.requests.Load(); n != 0 {
		t.Fatalf("the follower made %d token request(s) while the leader was alive", n)
	}

	// The leader dies; its Lease runs out rather than being released. The follower must
	// decide about the grant within the lease time (4 s) plus one jittered retry period
	// (client-go waits up to 2.2 x 0.5 s between tries), with a second for starting its
	// controller.
	killed := time.Now()
	a.stop()
	h.Eventually(30*time.Second, "the follower to take over and refresh twice", func() (bool, string) {
		neverExpired()
		return b.requests.Load() >= 2, fmt.Sprintf("follower %d requests", b.requests.Load())
	})
	const takeoverBound = 4*time.Second + 1100*time.Millisecond + time.Second
	if took := b.decidedAt().Sub(killed); took > takeoverBound {
		t.Errorf("the follower first decided %v after the leader died, want within %v (lease 4 s + retry up to 1.1 s + 1 s)", took, takeoverBound)
	} else {
		t.Logf("takeover: the follower decided %v after the leader died", took)
	}
	h.waitReady("le")
}
