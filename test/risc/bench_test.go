package risc_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	xrate "golang.org/x/time/rate"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
)

// BenchmarkSecurityEventStorm: 1,000 grants refreshing every ~20 s (30 s tokens) while the
// receiver takes 1,000 events a second for 30 seconds: token-revoked for half of the grants
// (by prefix and by hash, each delivered twice), sessions-revoked for 100 others,
// verifications, and the rest about accounts no grant holds. Every effect must be applied,
// no answer may be other than 202, and every grant not revoked must keep its refresh
// schedule. Run it alone (figures in docs/benchmarks.md):
//
//	go test -run XXX -bench SecurityEventStorm -benchtime 1x -timeout 20m ./test/risc/
//
// STORM_SCALE=0.1 runs a tenth of it (grants, events and rate), to check the benchmark
// itself on a busy machine.
func BenchmarkSecurityEventStorm(b *testing.B) {
	scale := 1.0
	if v := os.Getenv("STORM_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			b.Fatalf("STORM_SCALE=%q: want a number in (0, 1]", v)
		}
		scale = f
	}
	scaled := func(n int) int { return max(1, int(float64(n)*scale)) }
	var (
		grants   = scaled(1000)
		revoked  = scaled(500) // grants 0..revoked-1 get token-revoked
		warned   = scaled(100) // the next warned grants get sessions-revoked
		verified = scaled(100) // verification events
		rate     = scaled(1000)
	)
	const (
		duration = 30 * time.Second
		workers  = 64
	)
	h := newHarness(b)
	h.google.SetLifetime(30 * time.Second)
	h.secret("shared-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	tokens := make([]string, grants)
	subs := make([]string, grants)
	for i := range grants {
		name := fmt.Sprintf("g%04d", i)
		tokens[i] = h.google.NewRefreshToken(clientID, analytics, "openid")
		subs[i] = fmt.Sprintf("2%020d", i)
		h.google.SetAccount(tokens[i], fakegoogle.Account{Sub: subs[i], Email: name + "@example.com"})
		h.secret(name+"-refresh-token", map[string]string{"refresh_token": tokens[i]})
		g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
			ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "shared-client"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-refresh-token"},
		}}
		if err := h.C.Create(h.Ctx, g); err != nil {
			b.Fatal(err)
		}
	}
	h.Eventually(5*time.Minute, "every grant Ready with its account", func() (bool, string) {
		var list oauthv1alpha1.GoogleOAuthGrantList
		if err := h.C.List(h.Ctx, &list, client.InNamespace(h.Name)); err != nil {
			return false, err.Error()
		}
		n := 0
		for _, g := range list.Items {
			if condition(&g, oauthv1alpha1.ConditionReady) == "True/TokenValid" && g.Status.Account != nil {
				n++
			}
		}
		return n == grants, fmt.Sprintf("%d of %d", n, grants)
	})

	// Sign every event beforehand (RSA signing is the transmitter's cost, not the receiver's).
	type delivery struct {
		raw    string
		revoke bool // the first delivery of grant's token-revoked
		grant  int
	}
	total := int(duration.Seconds()) * rate
	plan := make([]delivery, total)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += 2 {
				o := risctransmitter.Options{Audience: clientID, JTI: fmt.Sprintf("storm-%d", i)}
				slot, k := i%60, i/60 // in each 60 events: one revoke, its redelivery, one warning, one verification
				switch {
				case slot == 0 && k < revoked, slot == 30 && k < revoked:
					alg := risc.AlgPrefix
					if k%2 == 1 {
						alg = risc.AlgHashSHA512
					}
					o.JTI = fmt.Sprintf("revoke-%d", k) // the redelivery repeats the jti
					plan[i] = delivery{raw: h.tx.Sign(o, risctransmitter.TokenRevoked(tokens[k], alg)), revoke: slot == 0, grant: k}
				case slot == 15 && k < warned:
					plan[i] = delivery{raw: h.tx.Sign(o, h.tx.AccountEvent(risc.SessionsRevoked, subs[revoked+k], nil))}
				case slot == 45 && k < verified:
					plan[i] = delivery{raw: h.tx.Sign(o, risctransmitter.Event{Type: risc.Verification, Body: map[string]any{"state": o.JTI}})}
				default:
					plan[i] = delivery{raw: h.tx.Sign(o, h.tx.AccountEvent(risc.TokensRevoked, fmt.Sprintf("9%020d", i), nil))}
				}
			}
		}()
	}
	wg.Wait()

	counter := func(typ, result string) float64 {
		return testutil.ToFloat64(risc.SecurityEvents.WithLabelValues(typ, result))
	}
	before := map[string]float64{}
	for _, k := range [][2]string{{"token-revoked", "applied"}, {"token-revoked", "duplicate"}, {"sessions-revoked", "applied"}, {"verification", "ignored"}, {"tokens-revoked", "no_match"}} {
		before[k[0]+"/"+k[1]] = counter(k[0], k[1])
	}
	requestsBefore := make([]int, grants)
	for i := revoked; i < grants; i++ {
		requestsBefore[i] = h.google.Requests(tokens[i])
	}

	b.ResetTimer()
	type answer struct {
		code   int
		took   time.Duration // from the event's scheduled send time: queueing included
		at     time.Time     // when the answer came
		revoke bool
	}
	answers := make([]answer, total)
	jobs := make(chan int, total)
	start := time.Now()
	// Event i is due at start + i/rate; a worker that takes it late has kept it queued.
	scheduled := func(i int) time.Time { return start.Add(time.Duration(i) * time.Second / time.Duration(rate)) }
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				code, err := h.tx.Post(h.url, plan[i].raw)
				if err != nil {
					code = -1
				}
				now := time.Now()
				answers[i] = answer{code: code, took: now.Sub(scheduled(i)), at: now, revoke: plan[i].revoke}
			}
		}()
	}
	// Pacing the load generator (not synchronisation): rate events a second, no bursts.
	pace := xrate.NewLimiter(xrate.Limit(rate), 1)
	for i := range total {
		if err := pace.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	sent := time.Since(start)
	b.StopTimer()

	// Every answer 202; every effect applied.
	var all, rev []time.Duration
	revokeAnswered := map[int]time.Time{} // grant index -> its token-revoked's 202
	for i, a := range answers {
		if a.code != 202 {
			b.Fatalf("delivery %d answered %d", i, a.code)
		}
		all = append(all, a.took)
		if a.revoke {
			rev = append(rev, a.took)
			revokeAnswered[plan[i].grant] = a.at
		}
	}
	// Each revoking answer came after the receiver's one write, the withdrawn token; the
	// controller then derives Revoked from it (issue 33): wait for all of them.
	var list oauthv1alpha1.GoogleOAuthGrantList
	var secrets corev1.SecretList
	revokedAt := map[string]time.Time{}
	settled := time.Now()
	h.Eventually(60*time.Second, "every revoked grant's Revoked condition", func() (bool, string) {
		if err := h.C.List(h.Ctx, &list, client.InNamespace(h.Name)); err != nil {
			b.Fatal(err)
		}
		if err := h.C.List(h.Ctx, &secrets, client.InNamespace(h.Name)); err != nil {
			b.Fatal(err)
		}
		withdrawnTokens := map[string]bool{}
		for _, s := range secrets.Items {
			if v, ok := s.Data["access_token"]; ok && len(v) == 0 {
				withdrawnTokens[s.Name] = true
			}
		}
		clear(revokedAt)
		for _, g := range list.Items {
			if c := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionRevoked); c != nil && c.Reason == "TokenRevokedByGoogle" && withdrawnTokens[g.Name+"-access-token"] {
				revokedAt[g.Name] = c.LastTransitionTime.Time
			}
		}
		return len(revokedAt) == revoked, fmt.Sprintf("%d of %d", len(revokedAt), revoked)
	})
	b.Logf("every revoked grant showed Revoked=True %s after the storm's last answer", time.Since(settled).Round(time.Millisecond))
	// The refresh loop: every grant not revoked refreshed during the storm and is Ready.
	missed, notReady := 0, 0
	for i := revoked; i < grants; i++ {
		if h.google.Requests(tokens[i]) == requestsBefore[i] {
			missed++
		}
		if c := condition(h.GetGrant(fmt.Sprintf("g%04d", i)), oauthv1alpha1.ConditionReady); c != "True/TokenValid" {
			notReady++
			b.Errorf("grant g%04d not revoked is %s after the storm", i, c)
		}
	}
	if missed > 0 {
		b.Errorf("%d grants not revoked made no token request during the %s storm (30 s tokens: each was due)", missed, sent.Round(time.Second))
	}
	// Revoked when its own token-revoked was answered (the answer comes after the writes;
	// the condition's time has only seconds): no request may come after that.
	for i := range revoked {
		name := fmt.Sprintf("g%04d", i)
		answered, ok := revokeAnswered[i]
		if !ok {
			b.Errorf("grant %s: no token-revoked was sent for it", name)
			continue
		}
		for _, at := range h.google.RequestTimes(tokens[i]) {
			if at.After(answered) {
				b.Errorf("revoked grant %s made a token request at %s, after its token-revoked was answered at %s", name, at.Format(time.RFC3339Nano), answered.Format(time.RFC3339Nano))
			}
		}
	}
	// Every warned grant gets its Warning (Events are written asynchronously: wait for them).
	warnedOK := 0
	h.Eventually(60*time.Second, "every warned grant's SessionsRevokedByGoogle Warning", func() (bool, string) {
		warnedOK = 0
		for i := revoked; i < revoked+warned; i++ {
			if h.countEvents(fmt.Sprintf("g%04d", i), "Warning/SessionsRevokedByGoogle") == 1 {
				warnedOK++
			}
		}
		return warnedOK == warned, fmt.Sprintf("%d of %d", warnedOK, warned)
	})
	got := func(k string, typ, result string) float64 { return counter(typ, result) - before[k] }
	if a := got("token-revoked/applied", "token-revoked", "applied"); a != float64(revoked) {
		b.Errorf("token-revoked applied %v times, want %d", a, revoked)
	}
	if d := got("token-revoked/duplicate", "token-revoked", "duplicate"); d != float64(revoked) {
		b.Errorf("token-revoked duplicates %v, want %d", d, revoked)
	}
	if a := got("sessions-revoked/applied", "sessions-revoked", "applied"); a != float64(warned) {
		b.Errorf("sessions-revoked applied %v times, want %d", a, warned)
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		slices.Sort(d)
		return d[min(len(d)-1, int(float64(len(d))*p))].Round(100 * time.Microsecond)
	}
	b.ReportMetric(float64(total)/sent.Seconds(), "events/s")
	b.ReportMetric(float64(pct(all, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(pct(rev, 0.5).Microseconds())/1000, "revoke-p50-ms")
	b.ReportMetric(float64(pct(rev, 0.99).Microseconds())/1000, "revoke-p99-ms")
	b.Logf("%d events in %s (%.0f/s) from %d workers: all 202; answered after their scheduled time: p50 %s, p99 %s, max %s; token-revoked (answer = token withdrawn) p50 %s, p99 %s, max %s",
		total, sent.Round(time.Millisecond), float64(total)/sent.Seconds(), workers, pct(all, 0.5), pct(all, 0.99), pct(all, 1), pct(rev, 0.5), pct(rev, 0.99), pct(rev, 1))
	b.Logf("effects: %d grants revoked with tokens withdrawn when the last answer came, %d duplicates ignored, %d/%d warned grants have their Warning, no_match %v, verification %v",
		len(revokedAt), int(got("token-revoked/duplicate", "token-revoked", "duplicate")), warnedOK, warned,
		got("tokens-revoked/no_match", "tokens-revoked", "no_match"), got("verification/ignored", "verification", "ignored"))
	b.Logf("refresh loop: %d of %d grants not revoked refreshed during the storm, %d not Ready", grants-revoked-missed, grants-revoked, notReady)
}
