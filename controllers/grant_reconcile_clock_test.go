package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
)

// liveMetadata stands in for the manager's Secret metadata watch: it reads the API server,
// so every call to Reconcile sees what the API server holds at that moment.
type liveMetadata struct{ c client.Client }

func (l liveMetadata) Synced(string) bool    { return true }
func (l liveMetadata) Release(string)        {}
func (l liveMetadata) Reader() client.Reader { return l.c }

// clockWorld is one table case: a namespace on the real API server, the fake Google server
// reached through the production token client, and a reconciler on a fake clock, called
// directly (no manager, no waiting).
type clockWorld struct {
	t      *testing.T
	ctx    context.Context
	ns     string
	clock  *clocktesting.FakeClock
	google *fakegoogle.Server
	r      *controllers.GrantReconciler
	rt     string
	key    types.NamespacedName
}

func newClockWorld(t *testing.T) *clockWorld {
	t.Helper()
	w := &clockWorld{t: t, ctx: context.Background(), ns: "c-" + rand.String(8), clock: clocktesting.NewFakeClock(time.Now().Truncate(time.Second)), google: fakegoogle.New()}
	if err := w.google.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.google.Close)
	w.google.AddClient(clientID, clientSecret)
	c := env.Client
	if err := c.Create(w.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}); err != nil {
		t.Fatal(err)
	}
	w.r = &controllers.GrantReconciler{
		Client: c, APIReader: c, SecretMeta: liveMetadata{c},
		Tokens: &tokenclient.Endpoint{TokenURL: w.google.TokenURL(), RevokeURL: w.google.RevokeURL(), HTTP: tokenclient.NewHTTPClient(5 * time.Second)},
		Clock:  w.clock, Backoff: schedule.Backoff{Base: 4 * time.Second, Max: time.Minute},
	}
	w.rt = w.google.NewRefreshToken(clientID, analytics)
	for name, data := range map[string]map[string]string{
		"g-client":        {"client_id": clientID, "client_secret": clientSecret},
		"g-refresh-token": {"refresh_token": w.rt},
	} {
		if err := c.Create(w.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, StringData: data}); err != nil {
			t.Fatal(err)
		}
	}
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: w.ns}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "g-client"},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "g-refresh-token"},
	}}
	if err := c.Create(w.ctx, g); err != nil {
		t.Fatal(err)
	}
	w.key = client.ObjectKeyFromObject(g)
	return w
}

// step is one call to Reconcile after advancing the clock and setting up the world.
type step struct {
	advance time.Duration
	setup   func(w *clockWorld)
	// requests: token requests this Reconcile must make.
	requests int
	// requeueMin..requeueMax bound RequeueAfter; both 0: no requeue (a watch event wakes the grant).
	requeueMin, requeueMax time.Duration
	ready                  string // "Status/Reason" of Ready afterwards
}

func (w *clockWorld) run(steps []step) {
	w.t.Helper()
	for i, s := range steps {
		w.clock.Step(s.advance)
		if s.setup != nil {
			s.setup(w)
		}
		before := w.google.TotalRequests()
		res, err := w.r.Reconcile(w.ctx, ctrl.Request{NamespacedName: w.key})
		if err != nil {
			w.t.Fatalf("step %d (t+%s): Reconcile: %v", i, s.advance, err)
		}
		where := fmt.Sprintf("step %d", i)
		if got := w.google.TotalRequests() - before; got != s.requests {
			w.t.Errorf("%s: %d token requests, want %d", where, got, s.requests)
		}
		if res.RequeueAfter < 0 {
			w.t.Errorf("%s: negative requeue %v", where, res.RequeueAfter)
		}
		switch {
		case s.requeueMin == 0 && s.requeueMax == 0:
			if res.RequeueAfter != 0 {
				w.t.Errorf("%s: RequeueAfter %v, want none", where, res.RequeueAfter)
			}
		case res.RequeueAfter < schedule.MinDelay || res.RequeueAfter < s.requeueMin || res.RequeueAfter > s.requeueMax:
			w.t.Errorf("%s: RequeueAfter %v, want within [%v, %v] and never under %v", where, res.RequeueAfter, s.requeueMin, s.requeueMax, schedule.MinDelay)
		}
		g := w.grant()
		ready := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
		if got := string(ready.Status) + "/" + ready.Reason; got != s.ready {
			w.t.Errorf("%s: Ready %s (%s), want %s", where, got, ready.Message, s.ready)
		}
		// Every result says its priority, that of grants already looked after, so none keeps
		// the low one of the grants listed at start or the default one of new work (either
		// would let every grant created since go first).
		if res.RequeueAfter > 0 && (res.Priority == nil || *res.Priority != controllers.KnownPriority) {
			w.t.Errorf("%s: priority %v, want %d", where, res.Priority, controllers.KnownPriority)
		}
	}
}

func (w *clockWorld) grant() *oauthv1alpha1.GoogleOAuthGrant {
	g := &oauthv1alpha1.GoogleOAuthGrant{}
	if err := env.Client.Get(w.ctx, w.key, g); err != nil {
		w.t.Fatal(err)
	}
	return g
}

func (w *clockWorld) annotate(k, v string) {
	g := w.grant()
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[k] = v
	if err := env.Client.Update(w.ctx, g); err != nil {
		w.t.Fatal(err)
	}
}

// TestReconcileOnAFakeClock drives Reconcile through time without waiting: Google's
// one-hour tokens, refreshed at two thirds of their life minus up to a tenth of the window.
func TestReconcileOnAFakeClock(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	const (
		ready    = "True/TokenValid"
		endpoint = "False/TokenEndpointError"
	)
	// A one-hour token has a 20-minute refresh window and up to 2 minutes of jitter: it is
	// refreshed 38 to 40 minutes after issue.
	fail := func(n int, f fakegoogle.Failure) func(w *clockWorld) {
		return func(w *clockWorld) { w.google.FailNext(n, f) }
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"due and not due", []step{
			{requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
			{advance: 30 * time.Minute, requests: 0, requeueMin: 8 * time.Minute, requeueMax: 10 * time.Minute, ready: ready},
			{advance: 10 * time.Minute, requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
			{requests: 0, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
		}},
		{"backoff after a 503 keeps the token, then retries", []step{
			{requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
			{advance: 40 * time.Minute, setup: fail(1, fakegoogle.Failure{Status: 503}), requests: 1, requeueMin: 2 * time.Second, requeueMax: 5 * time.Second, ready: ready},
			{requests: 0, requeueMin: time.Second, requeueMax: 5 * time.Second, ready: ready},
			{advance: 5 * time.Second, requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
		}},
		{"Retry-After is honoured", []step{
			{setup: fail(1, fakegoogle.Failure{Status: 429, RetryAfter: "120"}), requests: 1, requeueMin: 120 * time.Second, requeueMax: 122 * time.Second, ready: endpoint},
			{advance: 60 * time.Second, requests: 0, requeueMin: 60 * time.Second, requeueMax: 62 * time.Second, ready: endpoint},
			{advance: 62 * time.Second, requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
		}},
		{"expiry while failing turns Ready False without a request, and recovers", []step{
			{requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
			{advance: 40 * time.Minute, setup: fail(1, fakegoogle.Failure{Status: 503, RetryAfter: "1800"}), requests: 1, requeueMin: 20 * time.Minute, requeueMax: 20 * time.Minute, ready: ready},
			{advance: 20*time.Minute + time.Second, requests: 0, requeueMin: 9 * time.Minute, requeueMax: 11 * time.Minute, ready: endpoint},
			{advance: 11 * time.Minute, requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
		}},
		{"manual refresh is honoured once", []step{
			{requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
			{advance: 5 * time.Minute, setup: func(w *clockWorld) {
				w.annotate(oauthv1alpha1.RefreshRequestedAtAnnotation, w.clock.Now().UTC().Format(time.RFC3339Nano))
			}, requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
			{requests: 0, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
		}},
		{"a permanent failure is not retried until an input changes", []step{
			{setup: func(w *clockWorld) { w.google.RevokeRefreshToken(w.rt) }, requests: 1, ready: "False/InvalidGrant"},
			{advance: 2 * time.Hour, requests: 0, ready: "False/InvalidGrant"},
			{advance: 24 * time.Hour, requests: 0, ready: "False/InvalidGrant"},
			{setup: func(w *clockWorld) {
				s := &corev1.Secret{}
				if err := env.Client.Get(w.ctx, types.NamespacedName{Namespace: w.ns, Name: "g-refresh-token"}, s); err != nil {
					w.t.Fatal(err)
				}
				s.Data["refresh_token"] = []byte(w.google.NewRefreshToken(clientID, analytics))
				if err := env.Client.Update(w.ctx, s); err != nil {
					w.t.Fatal(err)
				}
			}, requests: 1, requeueMin: 38 * time.Minute, requeueMax: 40 * time.Minute, ready: ready},
		}},
		{"a grant without Secrets waits for them, without requests or requeues", []step{
			{setup: func(w *clockWorld) {
				if err := env.Client.Delete(w.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "g-client"}}); err != nil {
					w.t.Fatal(err)
				}
			}, requests: 0, ready: "False/SecretNotFound"},
			{advance: time.Hour, requests: 0, ready: "False/SecretNotFound"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			newClockWorld(t).run(tc.steps)
		})
	}
}
