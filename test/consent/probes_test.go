package consent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/internal/httplimit"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
)

// countingTransport counts the requests that reach the API server.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// 1,000 unauthenticated /callback probes (states naming grants that exist and have a link,
// grants that do not, from 1,000 addresses so the per-client limit does not hide the cost)
// cost the API server at most a handful of requests: the consent server answers them from
// the informer cache, and its live reads and writes go through a client of its own. A
// refresh cycle of GRANTKEEPER_PROBE_GRANTS grants (default 1,000) running meanwhile
// misses no refresh.
func TestCallbackProbesCostNoAPIRequests(t *testing.T) {
	grants := 1000
	if v, err := strconv.Atoi(os.Getenv("GRANTKEEPER_PROBE_GRANTS")); err == nil && v > 0 {
		grants = v
	}
	google := fakegoogle.New()
	if err := google.Start(); err != nil {
		t.Fatal(err)
	}
	defer google.Close()
	google.AddClient(clientID, clientSecret)
	ns := grantns.New(t, env.Client, "p")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Logger: log.Log, Cache: controllers.CacheOptions(ns.Name),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens := &tokenclient.Endpoint{TokenURL: google.TokenURL(), RevokeURL: google.RevokeURL(), HTTP: tokenclient.NewHTTPClient(5 * time.Second)}
	links := &consent.Links{Store: consent.Store{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient()}, BaseURL: base, TTL: time.Hour}
	if _, err := controllers.Setup(mgr, controllers.Config{
		Options:  controllers.Options{MaxConcurrentReconciles: 16, SkipNameValidation: true},
		Recorder: mgr.GetEventRecorder("grantkeeper"), Tokens: tokens,
		Backoff:          schedule.Backoff{Base: time.Second, Max: 4 * time.Second},
		ManagerNamespace: ns.Name, Consent: links,
	}); err != nil {
		t.Fatal(err)
	}
	// The consent server as cmd/manager wires it: the cache for requests from outside, a
	// low-QPS client of its own (counted here) for live reads and writes, a per-client limit.
	var apiRequests atomic.Int64
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 20, 40
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, n: &apiRequests} }
	own, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	serverLinks := *links
	serverLinks.Store = consent.Store{Reader: own, Writer: own}
	// Its cache is the endpoints' (--components=endpoints, issue 28 item 6): grants, and no
	// Secret (a Secret read goes to the API server, counted): link records are not cached.
	endpointsCache, err := client.New(cfg, client.Options{Scheme: env.Scheme,
		Cache: &client.CacheOptions{Reader: mgr.GetCache(), DisableFor: []client.Object{&corev1.Secret{}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &consent.Server{
		Reader: own, Client: own, Cache: endpointsCache,
		Limit:  httplimit.New(httplimit.Limits{Rate: 2, Burst: 10, MaxInFlight: 32, ClientIPHeader: "X-Forwarded-For"}).Wrap,
		Tokens: tokens, AuthURL: google.AuthURL(), Links: &serverLinks, ManagerNamespace: ns.Name,
		Clock: clock.RealClock{}, Log: log.Log.WithName("consent"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- mgr.Start(ctx) }()
	go func() { done <- srv.Serve(ctx, l) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("manager or consent server: %v", err)
			}
		}
	}()

	// Ten grants waiting for consent (each has a link record the probes aim at).
	create := func(o client.Object) {
		if err := ns.C.Create(ns.Ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		name := fmt.Sprintf("wants-consent-%d", i)
		create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-client", Namespace: ns.Name}, StringData: map[string]string{"client_id": clientID, "client_secret": clientSecret}})
		create(&oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
			ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: name + "-client"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-refresh-token"},
			Scopes:                []string{analytics},
		}})
	}
	ns.Eventually(time.Minute, "every waiting grant has a consent link", func() (bool, string) {
		var l oauthv1alpha1.GoogleOAuthGrantList
		if err := ns.C.List(ns.Ctx, &l, client.InNamespace(ns.Name)); err != nil {
			return false, err.Error()
		}
		n := 0
		for _, g := range l.Items {
			if g.Status.Consent == oauthv1alpha1.ConsentRequired {
				n++
			}
		}
		return n == 10, fmt.Sprintf("%d of 10", n)
	})
	// Wait until the cache shows the link records, so the probes test the steady state.
	ns.Eventually(30*time.Second, "the cache holds the link records", func() (bool, string) {
		var l corev1.SecretList
		if err := mgr.GetClient().List(ns.Ctx, &l, client.InNamespace(ns.Name), client.HasLabels{consent.ForLabel}); err != nil {
			return false, err.Error()
		}
		return len(l.Items) == 10, fmt.Sprintf("%d of 10", len(l.Items))
	})

	// The refresh cycle: grants with refresh tokens, created while the probes run.
	client0 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shared-client", Namespace: ns.Name}, StringData: map[string]string{"client_id": clientID, "client_secret": clientSecret}}
	create(client0)
	// Four creators: one alone took most of this test's time, and the cycle is the manager's
	// work, not the test's.
	var wg sync.WaitGroup
	wg.Go(func() {
		var creators errgroup.Group
		creators.SetLimit(4)
		for i := range grants {
			creators.Go(func() error {
				name := fmt.Sprintf("refreshes-%04d", i)
				rt := google.NewRefreshToken(clientID, analytics)
				if err := ns.C.Create(ns.Ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-refresh-token", Namespace: ns.Name}, StringData: map[string]string{"refresh_token": rt}}); err != nil {
					return err
				}
				return ns.C.Create(ns.Ctx, &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
					ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "shared-client"},
					RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-refresh-token"},
				}})
			})
		}
		if err := creators.Wait(); err != nil {
			t.Errorf("creating the refreshing grants: %v", err)
		}
	})

	hc := &http.Client{Timeout: 10 * time.Second}
	codes := map[int]int{}
	var codesMu sync.Mutex
	before := apiRequests.Load()
	probes := make(chan int)
	var pw sync.WaitGroup
	for range 16 {
		pw.Go(func() {
			for i := range probes {
				grant := fmt.Sprintf("wants-consent-%d", i%10)
				if i%2 == 1 {
					grant = fmt.Sprintf("no-such-grant-%d", i)
				}
				state, _ := consent.NewKey().NewState(ns.Name, grant, "", time.Now()) // signed with a key not the server's
				u := base + "/callback?code=4/0AbCdEf&state=" + url.QueryEscape(state)
				if i%4 == 2 {
					// A link in the right shape, signed with another key.
					u = base + consent.LinkPath(ns.Name, grant, consent.NewKey().LinkToken(ns.Name, grant, "", consent.NewID(), time.Now().Add(time.Hour)))
				}
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", i/250, i%250))
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				codesMu.Lock()
				codes[resp.StatusCode]++
				codesMu.Unlock()
			}
		})
	}
	for i := range 1000 {
		probes <- i
	}
	close(probes)
	pw.Wait()
	made := apiRequests.Load() - before
	t.Logf("1,000 /callback and /c/ probes: answers %v; API requests by the consent server: %d", codes, made)
	if codes[http.StatusBadRequest] != 750 || codes[http.StatusNotFound] != 250 {
		t.Errorf("answers %v, want 750 × 400 (states) and 250 × 404 (links)", codes)
	}
	if made > 5 {
		t.Errorf("1,000 unauthenticated probes made %d API requests, want at most 5: they must be answered from the cache", made)
	}

	wg.Wait()
	if t.Failed() {
		return
	}
	start := time.Now()
	ns.Eventually(5*time.Minute, "every refreshing grant Ready", func() (bool, string) {
		var l oauthv1alpha1.GoogleOAuthGrantList
		if err := mgr.GetClient().List(ns.Ctx, &l, client.InNamespace(ns.Name)); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, g := range l.Items {
			if c := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
				ready++
			}
		}
		return ready == grants, fmt.Sprintf("%d of %d Ready", ready, grants)
	})
	t.Logf("%d grants Ready %s after the last was created", grants, time.Since(start).Round(time.Millisecond))
}
