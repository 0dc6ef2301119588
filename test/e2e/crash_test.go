package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
)

// TestManagerKilledDuringRefreshes: the manager is SIGKILLed at random points 20 times in a
// row while short-lived tokens are refreshed by a provider that rotates refresh tokens. No
// grant ends with a lost refresh token, a stale Secret or a stuck condition.
func TestManagerKilledDuringRefreshes(t *testing.T) {
	ns := namespace(t, "crash")
	g := stack.Google
	g.SetLifetime(6 * time.Second)
	g.SetRotate(true)
	g.SetRotationGrace(2 * time.Minute)
	defer func() {
		g.SetLifetime(time.Hour)
		g.SetRotate(false)
		g.SetRotationGrace(0)
	}()
	grants := []string{"c1", "c2", "c3"}
	var manifest strings.Builder
	for _, name := range grants {
		rt := g.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope)
		fmt.Fprintf(&manifest, `apiVersion: v1
kind: Secret
metadata: {name: %[1]s-client}
stringData: {client_id: %[2]q, client_secret: %[3]q}
---
apiVersion: v1
kind: Secret
metadata: {name: %[1]s-rt}
stringData: {refresh_token: %[4]q}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: %[1]s}
spec:
  clientSecretRef: {name: %[1]s-client}
  refreshTokenSecretRef: {name: %[1]s-rt}
  refreshBefore: 3s
---
`, name, devstack.SampleClientID, devstack.SampleClientSecret, rt)
	}
	if out, err := kubectlStdin(t, manifest.String(), "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, name := range grants {
		kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/"+name)
	}

	// Leader election would make each restart wait out the killed leader's Lease.
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill schedule seed %d", seed)
	stack.StopManager()
	before := g.TotalRequests()
	for range 20 {
		if err := stack.StartManager("--leader-elect=false"); err != nil {
			t.Fatal(err)
		}
		<-time.After(time.Duration(300+rnd.IntN(2200)) * time.Millisecond) // a random point in the refresh cycle
		stack.KillManager()
	}
	t.Logf("20 SIGKILLs during %d token requests", g.TotalRequests()-before)
	if err := stack.StartManager(); err != nil {
		t.Fatal(err)
	}

	for _, name := range grants {
		kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/"+name)
		rt := secretKey(t, ns, name+"-rt", "refresh_token")
		if !g.RefreshTokenUsable(rt) {
			t.Errorf("%s: the refresh token in its Secret no longer works: the grant was lost", name)
		}
		if g.Revoked(rt) {
			t.Errorf("%s: stored refresh token revoked", name)
		}
		// Fresh again: the derived Secret holds a token the API accepts, and refreshes go on.
		if code := callAPI(t, secretKey(t, ns, name+"-access-token", "access_token")); code != 200 {
			t.Errorf("%s: the derived Secret's token is rejected (HTTP %d)", name, code)
		}
		if n := kubectl(t, "get", "gog", "-n", ns, name, "-o", "jsonpath={.status.failedRefreshAttempts}"); n != "" && n != "0" {
			t.Errorf("%s: failedRefreshAttempts %s after recovery", name, n)
		}
	}
	kubectl(t, "delete", "namespace", ns, "--wait=false")
}
