package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

// killMode is where in the manager's life a kill lands.
type killMode int

const (
	killAnywhere      killMode = iota // a random point 0.3-2.5 s after start, startup included
	killInFlight                      // while a token request waits for its answer
	killAfterAnswer                   // just after an answer: write-back, publish, status
	killAfterRotation                 // the fake has rotated the token; the answer never arrives
)

func (m killMode) String() string {
	return [...]string{"anywhere", "in flight", "after answer", "after rotation"}[m]
}

// TestManagerKilledDuringRefreshes: the manager is SIGKILLed 20 times in a row while
// short-lived tokens are refreshed by a provider that rotates refresh tokens: at random
// points, while token requests are in flight, just after answers (while the rotated token is
// written back and the access token published), and after the provider rotated a token but
// before the manager could hear of it. Refreshes with rotation must happen between the
// kills, and afterwards every grant's Secret must hold the newest refresh token the provider
// issued for it: a write-back lost or skipped anywhere would leave an older one.
func TestManagerKilledDuringRefreshes(t *testing.T) {
	ns := namespace(t, "crash")
	g := stack.Google
	g.SetLifetime(6 * time.Second)
	g.SetRotate(true)
	// A kill after a rotation leaves the Secret with the previous refresh token, which the
	// next manager presents at its next refresh: here within a few restarts, seconds. 30 s
	// covers that with margin and is shorter than the test, so the final check below is what
	// catches a token that was never written back, not the grace running out.
	g.SetRotationGrace(30 * time.Second)
	// Time for kills to land while requests are in flight (under the manager's 30 s timeout).
	g.SetLatency(200 * time.Millisecond)
	defer func() {
		g.SetLifetime(time.Hour)
		g.SetRotate(false)
		g.SetRotationGrace(0)
		g.SetLatency(0)
	}()
	grants := []string{"c1", "c2", "c3"}
	first := map[string]string{} // grant -> its first refresh token
	var manifest strings.Builder
	for _, name := range grants {
		rt := g.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope)
		first[name] = rt
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
	ours := map[string]bool{} // every refresh token of these grants, rotated ones included
	chains := func() {
		for _, rt := range first {
			ours[rt] = true
		}
		for _, e := range g.Exchanges() {
			if ours[e.RefreshToken] && e.RotatedTo != "" {
				ours[e.RotatedTo] = true
			}
		}
	}

	// Leader election would make each restart wait out the killed leader's Lease.
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill schedule seed %d", seed)
	stack.StopManager()
	loopStart := time.Now()
	type kill struct {
		mode killMode
		at   time.Time
	}
	var kills []kill
	// nextExchange waits until the fake has seen a token request for these grants that
	// arrived after since (and, when answered, was answered), and returns it.
	nextExchange := func(since time.Time, answered bool) (fakegoogle.Exchange, bool) {
		var found fakegoogle.Exchange
		err := wait.PollUntilContextTimeout(context.Background(), 2*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
			chains()
			for _, e := range g.Exchanges() {
				if ours[e.RefreshToken] && e.Arrived.After(since) && (!answered || e.Answered) {
					found = e
					return true, nil
				}
			}
			return false, nil
		})
		return found, err == nil
	}
	for i := range 20 {
		mode := killMode(i % 4)
		started := time.Now()
		var rotated, release chan struct{}
		if mode == killAfterRotation {
			rotated, release = make(chan struct{}), make(chan struct{})
			g.OnNextRotation(func() { close(rotated); <-release })
		}
		if err := stack.StartManager("--leader-elect=false"); err != nil {
			t.Fatal(err)
		}
		switch mode {
		case killAnywhere:
			<-time.After(time.Duration(300+rnd.IntN(2200)) * time.Millisecond)
		case killInFlight:
			if _, ok := nextExchange(started, false); !ok {
				t.Fatalf("kill %d: no token request within 20 s of starting the manager", i+1)
			}
			<-time.After(time.Duration(rnd.IntN(150)) * time.Millisecond) // under the fake's 200 ms latency
		case killAfterAnswer:
			if _, ok := nextExchange(started, true); !ok {
				t.Fatalf("kill %d: no answered token request within 20 s of starting the manager", i+1)
			}
			<-time.After(time.Duration(rnd.IntN(30)) * time.Millisecond)
		case killAfterRotation:
			select {
			case <-rotated:
			case <-time.After(20 * time.Second):
				t.Fatalf("kill %d: no rotation within 20 s of starting the manager", i+1)
			}
		}
		kills = append(kills, kill{mode, time.Now()})
		stack.KillManager()
		if release != nil {
			close(release)
		}
	}
	loopEnd := time.Now()
	g.OnNextRotation(nil)

	// What happened during the kills, from the fake's record.
	chains()
	requests, rotations := 0, 0
	var during []fakegoogle.Exchange
	for _, e := range g.Exchanges() {
		if !ours[e.RefreshToken] || e.Arrived.Before(loopStart) || e.Arrived.After(loopEnd) {
			continue
		}
		during = append(during, e)
		requests++
		if e.RotatedTo != "" {
			rotations++
		}
	}
	// Each after-rotation kill cut one rotation off before its answer; the others reached
	// the manager, which had to store the new refresh token.
	cutOff := 0
	for _, k := range kills {
		if k.mode == killAfterRotation {
			cutOff++
		}
	}
	received := rotations - cutOff
	inPath := map[killMode]int{}
	for _, k := range kills {
		for _, e := range during {
			inFlight := !e.Arrived.After(k.at) && (e.Ended.IsZero() || !e.Ended.Before(k.at))
			justAnswered := e.Answered && !e.Ended.After(k.at) && k.at.Sub(e.Ended) < 100*time.Millisecond
			if inFlight || justAnswered {
				inPath[k.mode]++
				break
			}
		}
	}
	t.Logf("20 SIGKILLs (seed %d) during %d token requests; %d rotations reached the manager, %d were cut off by a kill; kills inside the refresh path by mode: %v",
		seed, requests, received, cutOff, inPath)
	if received < 5 {
		t.Errorf("only %d refreshes with rotation reached the manager during the kills, want at least 5 (one per after-answer kill)", received)
	}
	if n := inPath[killInFlight] + inPath[killAfterAnswer] + inPath[killAfterRotation]; n < 15 {
		t.Errorf("only %d of the 15 targeted kills landed inside the refresh path (a request in flight or answered less than 100 ms before): %v", n, inPath)
	}

	if err := stack.StartManager(); err != nil {
		t.Fatal(err)
	}
	for _, name := range grants {
		kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "gog/"+name)
		// The Secret must come to hold the newest refresh token of the grant's chain (refreshes
		// go on, so poll briefly for a write-back in progress); an older one means a rotated
		// token was never stored.
		var stored, newest string
		deadline := time.Now().Add(10 * time.Second)
		for {
			stored = secretKey(t, ns, name+"-rt", "refresh_token")
			newest = g.CurrentRefreshToken(first[name])
			if stored == newest || time.Now().After(deadline) {
				break
			}
			<-time.After(200 * time.Millisecond) // poll interval
		}
		if stored != newest {
			t.Errorf("%s: the Secret holds refresh token %.12s..., not the newest the provider issued (%.12s...): a rotated token was lost", name, stored, newest)
		}
		if !g.RefreshTokenUsable(stored) {
			t.Errorf("%s: the refresh token in its Secret no longer works: the grant was lost", name)
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
