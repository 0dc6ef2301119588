// Command bench is `make bench`: it runs the manager as a separate process against a real
// local control plane and a fake Google with latency, with many grants and short-lived
// tokens, and measures what users and cluster operators care about: time to Ready, token
// requests per refresh cycle, seconds any derived Secret held an expired token, API writes
// per refresh, memory and CPU, behaviour across a restart, and the memory cost of unrelated
// Secrets. It prints a table and writes JSON. Configure with BENCH_* environment variables.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"

	"github.com/go-logr/logr"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/listencheck"
	"github.com/grantkeeper/grantkeeper/test/framework/localcluster"
)

const (
	ns           = "bench"
	clientID     = "bench.apps.googleusercontent.com"
	clientSecret = "GOCSPX-bench"
)

type config struct {
	Kind          grantKind     `json:"kind"`
	Grants        int           `json:"grants"`
	TokenLifetime time.Duration `json:"token_lifetime_ns"`
	Cycles        int           `json:"cycles"`
	Latency       time.Duration `json:"fake_google_latency_ns"`
	Unrelated     int           `json:"unrelated_secrets"`
	UnrelatedSize int           `json:"unrelated_secret_bytes"`
}

type results struct {
	Config                config     `json:"config"`
	Machine               string     `json:"machine"`
	ReadySeconds          [3]float64 `json:"ready_seconds_p50_p99_max"`
	WindowSeconds         float64    `json:"window_seconds"`
	TokenRequests         int        `json:"token_requests_in_window"`
	DueRefreshes          int        `json:"due_refreshes_in_window"`
	ChargedRequests       int        `json:"token_requests_charged_to_the_window"`
	RequestsPerDue        float64    `json:"token_requests_per_due_refresh"`
	MissedRefreshes       int        `json:"due_refreshes_missed"`
	GrantsMissingRefresh  int        `json:"grants_with_a_missed_refresh"`
	GrantsWithoutRequest  int        `json:"grants_without_a_request_for_a_token_lifetime"`
	ExpiredTokenSeconds   float64    `json:"expired_token_seconds"`
	LateReplacements      string     `json:"tokens_replaced_after_expiry"`
	SecretWrites          int        `json:"derived_secret_writes_in_window"`
	GrantWrites           int        `json:"grant_writes_in_window"`
	WritesPerRefresh      float64    `json:"api_writes_per_refresh"`
	APIRequests           float64    `json:"manager_api_requests_in_window"`
	APIRequestsPerRefresh float64    `json:"api_requests_per_refresh"`
	PeakRSSMiB            float64    `json:"manager_peak_rss_mib"`
	CPUSeconds            float64    `json:"manager_cpu_seconds"`
	CPUPerRefreshMillis   float64    `json:"manager_cpu_ms_per_refresh"`
	RestartEarlyRequests  int        `json:"restart_early_token_requests"`
	RestartRequests       int        `json:"restart_token_requests_first_minute"`
	RestartDecidedSeconds float64    `json:"restart_seconds_until_every_grant_decided"`
	RSSBaseMiB            float64    `json:"manager_rss_mib"`
	RSSUnrelatedMiB       float64    `json:"manager_rss_mib_with_unrelated_secrets"`
	HeapBaseMiB           float64    `json:"manager_heap_inuse_mib"`
	HeapPerGrantKiB       float64    `json:"manager_heap_inuse_kib_per_grant"`
	HeapRangeMiB          [2]float64 `json:"manager_heap_inuse_mib_lowest_highest"`
	HeapUnrelatedMiB      float64    `json:"manager_heap_inuse_mib_with_unrelated_secrets"`
	// Where the window's CPU went, per process, and what else loaded the machine.
	WindowCPUSeconds procCPU            `json:"window_cpu_seconds_by_process"`
	LoadAverage      [2]string          `json:"load_average_window_start_end"`
	APILatencyMillis map[string]float64 `json:"apiserver_mean_request_ms_by_verb_in_window"`
	// LiveHeap is the heap's allocated bytes right after a forced GC: what the manager
	// holds, without the garbage the GC has not yet collected (GOGC lets that grow to half
	// the live heap) or the free space in partly used spans that heap in use counts.
	LiveHeapMiB         float64 `json:"manager_live_heap_after_gc_mib"`
	LiveHeapPerGrantKiB float64 `json:"manager_live_heap_after_gc_kib_per_grant"`
	HeapProfile         string  `json:"manager_heap_profile,omitempty"`
	HeapProfileWindow   string  `json:"manager_heap_profile_window,omitempty"`
	// The heap profile taken at the highest RSS sampled from creation to the window's end,
	// that RSS and what it was made of.
	HeapProfilePeak     string  `json:"manager_heap_profile_peak,omitempty"`
	PeakSampleRSSMiB    float64 `json:"manager_peak_sample_rss_mib,omitempty"`
	PeakSampleBreakdown string  `json:"manager_peak_sample_breakdown,omitempty"`
	APIServerProfile    string  `json:"apiserver_cpu_profile,omitempty"`
	// The limit (phase 0) and this run against it.
	Limit              limitFigures `json:"limit"`
	DemandPerSecond    float64      `json:"refreshes_per_second_due"`
	LimitVerdict       string       `json:"limit_verdict"`
	SustainedPerSecond float64      `json:"refreshes_per_second_sustained"`
	FractionOfLimit    float64      `json:"fraction_of_limit"`
	APIServerCPUMillis float64      `json:"kube_apiserver_cpu_ms_per_refresh"`
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func say(format string, args ...any) {
	fmt.Printf("%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func must(err error) {
	if err != nil {
		say("bench failed: %v", err)
		if cleanup != nil {
			cleanup()
		}
		os.Exit(1)
	}
}

var cleanup func()

// tracker follows grants and derived Secrets through watches, as a user's pods would see them.
type tracker struct {
	mu          sync.Mutex
	created     map[string]time.Time
	ready       map[string]time.Time
	refreshTime map[string]time.Time
	// expiry is when the token each derived Secret holds stops working, by the fake's own
	// record (validity), never the operator's expiry field.
	expiry       map[string]time.Time
	token        map[string]string
	validity     func(accessToken string) (expiry time.Time, ok bool)
	stale        time.Duration
	staleFrom    time.Time // only count staleness after this
	secretWrites int
	grantWrites  int
	// decided records when the watch saw each grant's status.observedGeneration restored
	// after the bench cleared it (decidedSince is when it did).
	decidedSince time.Time
	decided      map[string]time.Time
}

// onGrant reads a grant of either kind (the informer watches the run's kind only).
func (t *tracker) onGrant(obj any) {
	g, ok := obj.(oauthv1alpha1.Grant)
	if !ok {
		return
	}
	st := g.GrantStatus()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, seen := t.ready[g.GetName()]; !seen && meta.IsStatusConditionTrue(st.Conditions, oauthv1alpha1.ConditionReady) {
		t.ready[g.GetName()] = time.Now()
	}
	if st.RefreshTime != nil {
		t.refreshTime[g.GetName()] = st.RefreshTime.Time
	}
	if !t.decidedSince.IsZero() && st.ObservedGeneration == g.GetGeneration() {
		if _, seen := t.decided[g.GetName()]; !seen {
			t.decided[g.GetName()] = time.Now()
		}
	}
}

func (t *tracker) onSecret(obj any) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	now := time.Now()
	tok := string(s.Data[oauthv1alpha1.AccessTokenKey])
	// A token the fake never issued never worked: expired since the zero time.
	expiry, _ := t.validity(tok)
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, ok := t.expiry[s.Name]; ok && t.token[s.Name] != tok {
		t.stale += staleBetween(prev, now, t.staleFrom)
	}
	t.expiry[s.Name], t.token[s.Name] = expiry, tok
}

// staleBetween is how long, up to now and after from, a token expiring at expiry was expired.
func staleBetween(expiry, now, from time.Time) time.Duration {
	start := expiry
	if from.After(start) {
		start = from
	}
	if now.After(start) {
		return now.Sub(start)
	}
	return 0
}

func (t *tracker) staleNow() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	total := t.stale
	now := time.Now()
	for _, e := range t.expiry {
		total += staleBetween(e, now, t.staleFrom)
	}
	return total
}

func main() {
	ctrllog.SetLogger(logr.Discard())
	kind, err := parseKind(os.Getenv("BENCH_KIND"))
	must(err)
	cfg := config{
		Kind:          kind,
		Grants:        envInt("BENCH_GRANTS", 1000),
		TokenLifetime: envDuration("BENCH_TOKEN_LIFETIME", 60*time.Second),
		Cycles:        envInt("BENCH_CYCLES", 3),
		Latency:       envDuration("BENCH_LATENCY", 20*time.Millisecond),
		Unrelated:     envInt("BENCH_UNRELATED_SECRETS", 10000),
		UnrelatedSize: envInt("BENCH_UNRELATED_SECRET_BYTES", 16<<10),
	}
	root, err := k8sbin.RepoRoot()
	must(err)
	binDir, err := k8sbin.Dir(root)
	must(err)
	dir := filepath.Join(root, "bin", "bench-results")
	_ = os.RemoveAll(dir)
	must(os.MkdirAll(dir, 0o700))
	res := &results{Config: cfg, Machine: machine()}
	say("grantkeeper bench: %d %ss, %s tokens, %d cycles, fake Google latency %s, %d unrelated %d-byte Secrets, manager flags %q",
		cfg.Grants, cfg.Kind, cfg.TokenLifetime, cfg.Cycles, cfg.Latency, cfg.Unrelated, cfg.UnrelatedSize, os.Getenv("BENCH_MANAGER_ARGS"))

	cluster, err := localcluster.Start(binDir, dir)
	must(err)
	var mgr *managerProc
	var stopWatches func()
	cleanup = func() {
		if mgr != nil {
			mgr.stop()
		}
		if stopWatches != nil {
			stopWatches()
		}
		cluster.Stop()
	}
	defer cleanup()
	for _, args := range [][]string{
		{"apply", "--server-side", "-k", filepath.Join(root, "config", "local")},
		{"wait", "--for=condition=Established", "crd/googleoauthgrants.oauth.grantkeeper.dev", "crd/oauthgrants.oauth.grantkeeper.dev", "crd/oauthclients.oauth.grantkeeper.dev"},
		{"create", "namespace", ns},
	} {
		if out, err := cluster.Kubectl(args...).CombinedOutput(); err != nil {
			must(fmt.Errorf("kubectl %v: %v: %s", args, err, out))
		}
	}

	google := fakegoogle.New()
	google.SetLifetime(cfg.TokenLifetime)
	google.SetLatency(cfg.Latency)
	google.AddClient(clientID, clientSecret)
	must(google.Start())
	defer google.Close()

	ctx := context.Background()
	restCfg, err := clientcmd.BuildConfigFromFlags("", cluster.AdminKubeconfig)
	must(err)
	restCfg.QPS, restCfg.Burst = 1000, 2000
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(oauthv1alpha1.AddToScheme(scheme))
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	must(err)

	// Phase 0: the limit, before any grant exists: what the API server sustains for exactly
	// the calls a refresh makes, so the figures below are read against this host's ceiling.
	mgrCfg, err := clientcmd.BuildConfigFromFlags("", cluster.ManagerKubeconfig)
	must(err)
	calls, err := parseCalls(os.Getenv("BENCH_LIMIT_CALLS"), refreshCalls)
	must(err)
	lc := limitConfig{Calls: calls, Workers: managerWorkers(strings.Fields(os.Getenv("BENCH_MANAGER_ARGS")), 32),
		Duration: envDuration("BENCH_LIMIT_DURATION", 30*time.Second), Objects: min(max(cfg.Grants, 1), 1000), Namespace: limitNamespace, Kind: cfg.Kind}
	if sets := os.Getenv("BENCH_LIMIT_COMPARE"); sets != "" {
		// Only the limit, for each call set given (;-separated), one after another.
		for i, set := range strings.Split(sets, ";") {
			calls, err := parseCalls(set, refreshCalls)
			must(err)
			l := lc
			l.Calls, l.Namespace = calls, fmt.Sprintf("%s-%d", limitNamespace, i)
			lim, err := measureLimit(ctx, mgrCfg, restCfg, c, scheme, l, dir)
			must(err)
			say("%s", reportLimit(lim))
		}
		cleanup()
		return
	}
	say("measuring the limit: %d workers making %v per refresh for %s", lc.Workers, lc.Calls, lc.Duration)
	lim, err := measureLimit(ctx, mgrCfg, restCfg, c, scheme, lc, dir)
	must(err)
	res.Limit = lim
	res.DemandPerSecond = demandPerSecond(cfg.Grants, cfg.TokenLifetime)
	res.LimitVerdict = limitVerdict(res.DemandPerSecond, lim.PerSecond)
	say("%s", reportLimit(lim))
	say("%s", res.LimitVerdict)
	trackerCtx, stopTracker := context.WithCancel(context.Background())
	tr := startTracker(trackerCtx, restCfg, scheme, cfg.Kind, func(at string) (time.Time, bool) {
		_, expiry, ok := google.AccessTokenValidity(at)
		return expiry, ok
	})
	stopWatches = stopTracker

	mgr = startManager(root, dir, cluster, google, cfg.Kind)

	// Phase 1: create the grants, each with its own refresh-token Secret.
	for _, o := range cfg.Kind.clientObjects(ns, google.TokenURL(), google.RevokeURL()) {
		must(c.Create(ctx, o))
	}
	if cfg.Kind == kindProvider {
		// Creation to Ready is the grant's: wait for its client first.
		waitFor(2*time.Minute, "the OAuthClient Ready", func() (bool, string) {
			oc := &oauthv1alpha1.OAuthClient{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: clientName}, oc); err != nil {
				return false, err.Error()
			}
			return meta.IsStatusConditionTrue(oc.Status.Conditions, oauthv1alpha1.ConditionReady), fmt.Sprintf("%v", oc.Status.Conditions)
		})
	}
	rts := make([]string, cfg.Grants)
	for i := range rts {
		rts[i] = google.NewRefreshToken(clientID, "https://www.googleapis.com/auth/analytics.readonly")
	}
	say("creating %d refresh-token Secrets and %d grants", cfg.Grants, cfg.Grants)
	// The manager's peak RSS comes while the grants are created and get their first tokens,
	// or in the refresh storm right after: keep the heap profile taken at the highest RSS
	// seen until the window ends (without forcing a GC, so the sampling does not lower the
	// peak it looks at).
	stopPeak := mgr.watchPeak(dir, "heap-peak.pprof")
	parallel(cfg.Grants, 16, func(i int) error {
		name := fmt.Sprintf("g%05d", i)
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-rt", Namespace: ns},
			StringData: map[string]string{"refresh_token": rts[i]}}); err != nil {
			return err
		}
		tr.mu.Lock()
		tr.created[name] = time.Now()
		tr.mu.Unlock()
		return c.Create(ctx, cfg.Kind.grant(ns, name))
	})
	waitFor(10*time.Minute, "all grants Ready", func() (bool, string) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.ready) == cfg.Grants, fmt.Sprintf("%d/%d Ready", len(tr.ready), cfg.Grants)
	})
	var waits []float64
	tr.mu.Lock()
	for name, at := range tr.ready {
		waits = append(waits, at.Sub(tr.created[name]).Seconds())
	}
	tr.mu.Unlock()
	slices.Sort(waits)
	res.ReadySeconds = [3]float64{percentile(waits, 0.5), percentile(waits, 0.99), waits[len(waits)-1]}
	say("all Ready: p50 %.2fs, p99 %.2fs, max %.2fs", res.ReadySeconds[0], res.ReadySeconds[1], res.ReadySeconds[2])

	// Phase 2: several refresh cycles.
	window := time.Duration(cfg.Cycles) * cfg.TokenLifetime
	say("measuring %s of refresh cycles", window)
	start := time.Now()
	tr.mu.Lock()
	tr.staleFrom = start
	sw0, gw0 := tr.secretWrites, tr.grantWrites
	tr.mu.Unlock()
	req0 := google.TotalRequests()
	cpu0 := mgr.cpuSeconds()
	// Every request the manager's Kubernetes client made, by client-go's own counter (lease
	// renewals and events included): reads, writes, everything the API server serves it.
	api0 := mgr.scrape("rest_client_requests_total", nil)
	procs := stackProcs()
	stackCPU0, lat0 := cpuOf(procs, mgr), scrapeAPIServer(ctx, restCfg)
	res.LoadAverage[0] = loadAverage()
	// A CPU profile of the API server over the window's middle third.
	apiProfile := make(chan string, 1)
	go func() {
		select {
		case <-time.After(window / 3):
			apiProfile <- saveAPIServerProfile(ctx, restCfg, window/3, dir)
		case <-trackerCtx.Done():
			apiProfile <- ""
		}
	}()
	progress(window, func() string {
		return fmt.Sprintf("token requests %d, expired-token-seconds %.1f, manager RSS %.0f MiB",
			google.TotalRequests()-req0, tr.staleNow().Seconds(), rssNow(mgr))
	})
	end := time.Now()
	res.HeapProfilePeak, res.PeakSampleRSSMiB, res.PeakSampleBreakdown = stopPeak()
	res.WindowCPUSeconds = cpuOf(procs, mgr).since(stackCPU0)
	res.APILatencyMillis = scrapeAPIServer(ctx, restCfg).meanMillis(lat0)
	res.LoadAverage[1] = loadAverage()
	res.APIServerProfile = <-apiProfile
	res.HeapProfileWindow = mgr.saveHeapProfile(dir, "heap-window.pprof")
	res.WindowSeconds = end.Sub(start).Seconds()
	res.ExpiredTokenSeconds = tr.staleNow().Seconds()
	tr.mu.Lock()
	res.SecretWrites, res.GrantWrites = tr.secretWrites-sw0, tr.grantWrites-gw0
	tr.mu.Unlock()
	res.TokenRequests = google.TotalRequests() - req0
	var cycles cycleFigures
	var late []lateReplacement
	tr.mu.Lock()
	for i, rt := range rts {
		name := fmt.Sprintf("g%05d", i)
		toks, reqs := google.AccessTokensFor(rt), google.RequestTimes(rt)
		cycles.add(grantCycles(toks, reqs, cfg.TokenLifetime, start, end))
		late = append(late, lateReplacements(name, toks, reqs, start, end)...)
	}
	tr.mu.Unlock()
	res.LateReplacements = describeLate(late, start)
	res.DueRefreshes, res.MissedRefreshes, res.ChargedRequests = cycles.due, cycles.missed, cycles.requests
	res.GrantsMissingRefresh, res.GrantsWithoutRequest = cycles.grantsMissing, cycles.grantsSilent
	if cycles.due > 0 {
		res.RequestsPerDue = float64(cycles.requests) / float64(cycles.due)
	}
	if res.TokenRequests > 0 {
		res.WritesPerRefresh = float64(res.SecretWrites+res.GrantWrites) / float64(res.TokenRequests)
		res.CPUPerRefreshMillis = (mgr.cpuSeconds() - cpu0) * 1000 / float64(res.TokenRequests)
		res.APIRequests = mgr.scrape("rest_client_requests_total", nil) - api0
		res.APIRequestsPerRefresh = res.APIRequests / float64(res.TokenRequests)
	}
	_, res.PeakRSSMiB = mgr.rssMiB()
	res.CPUSeconds = mgr.cpuSeconds()
	if res.TokenRequests > 0 {
		res.SustainedPerSecond = float64(res.TokenRequests) / res.WindowSeconds
		res.APIServerCPUMillis = res.WindowCPUSeconds["kube-apiserver"] * 1000 / float64(res.TokenRequests)
	}
	if res.Limit.PerSecond > 0 {
		res.FractionOfLimit = res.SustainedPerSecond / res.Limit.PerSecond
	}

	// Phase 3: restart with every token fresh.
	say("restarting the manager")
	mgr.stop()
	// Early is judged by the tokens the fake issued, not by the schedule the manager wrote
	// (a manager that wrote a wrong schedule would agree with itself).
	lastIssued := make([]fakegoogle.IssuedToken, len(rts))
	for i, rt := range rts {
		if toks := google.AccessTokensFor(rt); len(toks) > 0 {
			lastIssued[i] = toks[len(toks)-1]
		}
	}
	clearObservedGeneration(ctx, c, cfg.Kind, cfg.Grants)
	restart := time.Now()
	req0 = google.TotalRequests()
	mgr = startManager(root, dir, cluster, google, cfg.Kind)
	res.RestartDecidedSeconds = tr.waitDecided(cfg.Grants, restart)
	if wait := time.Until(restart.Add(time.Minute)); wait > 0 {
		<-time.After(wait) // the measurement window is the first minute
	}
	res.RestartRequests = google.TotalRequests() - req0
	for i, rt := range rts {
		for _, at := range google.RequestTimes(rt) {
			if at.After(restart) && at.Before(earliestDue(lastIssued[i])) {
				res.RestartEarlyRequests++
			}
		}
	}
	res.RSSBaseMiB = rssNow(mgr)
	res.HeapBaseMiB, res.HeapRangeMiB = mgr.heapMiBMedian()
	res.HeapPerGrantKiB = res.HeapBaseMiB * 1024 / float64(cfg.Grants)
	res.HeapProfile = mgr.saveHeapProfile(dir, "heap-after-restart.pprof") // after a GC
	res.LiveHeapMiB = mgr.scrape("go_memstats_heap_alloc_bytes", nil) / (1 << 20)
	res.LiveHeapPerGrantKiB = res.LiveHeapMiB * 1024 / float64(cfg.Grants)

	// Phase 4: the memory cost of unrelated Secrets.
	if cfg.Unrelated > 0 {
		say("creating %d unrelated %d-byte Secrets in other namespaces", cfg.Unrelated, cfg.UnrelatedSize)
		payload := strings.Repeat("x", cfg.UnrelatedSize)
		for i := range 10 {
			must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("other-%d", i)}}))
		}
		parallel(cfg.Unrelated, 16, func(i int) error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%05d", i), Namespace: fmt.Sprintf("other-%d", i%10),
				Annotations: map[string]string{"note": "unrelated to grantkeeper"}}, StringData: map[string]string{"data": payload}})
		})
		mgr.stop()
		clearObservedGeneration(ctx, c, cfg.Kind, cfg.Grants)
		restart = time.Now()
		mgr = startManager(root, dir, cluster, google, cfg.Kind)
		tr.waitDecided(cfg.Grants, restart)
		<-time.After(time.Until(restart.Add(time.Minute)))
		res.RSSUnrelatedMiB, res.HeapUnrelatedMiB = rssNow(mgr), mgr.heapMiB()
	}
	report(res, dir)
}

func startTracker(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, kind grantKind, validity func(string) (time.Time, bool)) *tracker {
	tr := &tracker{created: map[string]time.Time{}, ready: map[string]time.Time{}, refreshTime: map[string]time.Time{},
		expiry: map[string]time.Time{}, token: map[string]string{}, validity: validity}
	sel := labels.SelectorFromSet(labels.Set{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue})
	informers, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}},
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {Label: sel}}})
	must(err)
	gi, err := informers.GetInformer(ctx, kind.empty())
	must(err)
	_, err = gi.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: tr.onGrant,
		UpdateFunc: func(old, obj any) {
			if old.(client.Object).GetResourceVersion() != obj.(client.Object).GetResourceVersion() {
				tr.mu.Lock()
				tr.grantWrites++
				tr.mu.Unlock()
			}
			tr.onGrant(obj)
		},
	})
	must(err)
	si, err := informers.GetInformer(ctx, &corev1.Secret{})
	must(err)
	_, err = si.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: tr.onSecret,
		UpdateFunc: func(old, obj any) {
			if old.(client.Object).GetResourceVersion() != obj.(client.Object).GetResourceVersion() {
				tr.mu.Lock()
				tr.secretWrites++
				tr.mu.Unlock()
			}
			tr.onSecret(obj)
		},
	})
	must(err)
	go func() { _ = informers.Start(ctx) }()
	informers.WaitForCacheSync(ctx)
	return tr
}

// managerProc is the manager running as a separate process, as in a cluster.
type managerProc struct {
	cmd         *exec.Cmd
	done        chan struct{} // closed when the process ends
	metricsAddr string
	pprofAddr   string
}

// startManager starts the manager with its metrics and pprof on free loopback ports. A
// port picked free can be taken by another process before the manager binds it; the
// manager then exits, and starts again on others.
func startManager(root, dir string, cluster *localcluster.Cluster, google *fakegoogle.Server, kind grantKind) *managerProc {
	for attempt := 1; ; attempt++ {
		metricsPort, err := listencheck.FreePort()
		must(err)
		pprofPort, err := listencheck.FreePort()
		must(err)
		m := &managerProc{metricsAddr: fmt.Sprintf("127.0.0.1:%d", metricsPort), pprofAddr: fmt.Sprintf("127.0.0.1:%d", pprofPort), done: make(chan struct{})}
		log, err := os.OpenFile(filepath.Join(dir, "manager.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		must(err)
		m.cmd = exec.Command(filepath.Join(root, "bin", "manager"), "--kubeconfig="+cluster.ManagerKubeconfig,
			"--token-url="+google.TokenURL(), "--revoke-url="+google.RevokeURL(),
			"--leader-elect", "--leader-election-namespace="+localcluster.ManagerNamespace,
			"--metrics-bind-address="+m.metricsAddr, "--metrics-secure=false", "--health-probe-bind-address=0",
			// pprof on loopback, for the heap profiles and the live heap after a forced GC.
			"--pprof-bind-address="+m.pprofAddr)
		m.cmd.Args = append(m.cmd.Args, kind.managerArgs()...)
		m.cmd.Args = append(m.cmd.Args, strings.Fields(os.Getenv("BENCH_MANAGER_ARGS"))...)
		m.cmd.Stdout, m.cmd.Stderr = log, log
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		must(m.cmd.Start())
		go func() { _ = m.cmd.Wait(); log.Close(); close(m.done) }()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			select {
			case <-m.done:
				if attempt == 5 {
					must(fmt.Errorf("the manager exited before listening on %s and %s (5 attempts; see manager.log)", m.metricsAddr, m.pprofAddr))
				}
			default:
				if listencheck.ListensOn(m.cmd.Process.Pid, metricsPort) && listencheck.ListensOn(m.cmd.Process.Pid, pprofPort) {
					return m
				}
				if time.Now().After(deadline) {
					must(fmt.Errorf("the manager did not listen on %s and %s within 2 minutes", m.metricsAddr, m.pprofAddr))
				}
				<-time.After(100 * time.Millisecond) // poll interval
				continue
			}
			break
		}
	}
}

func (m *managerProc) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done
}

// rssMiB is the manager's resident memory now and its peak so far.
func (m *managerProc) rssMiB() (now, peak float64) {
	p, err := procfs.NewProc(m.cmd.Process.Pid)
	if err != nil {
		return 0, 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, 0
	}
	return float64(st.VmRSS) / (1 << 20), float64(st.VmHWM) / (1 << 20)
}

func rssNow(m *managerProc) float64 {
	now, _ := m.rssMiB()
	return now
}

func (m *managerProc) cpuSeconds() float64 {
	p, err := procfs.NewProc(m.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	st, err := p.Stat()
	if err != nil {
		return 0
	}
	return st.CPUTime()
}

// scrape reads one metric from the manager's metrics endpoint, summing the series that carry
// every label in match; -1 when the endpoint cannot be read.
func (m *managerProc) scrape(name string, match map[string]string) float64 {
	resp, err := http.Get("http://" + m.metricsAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return -1
	}
	total := 0.0
	for _, metric := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range metric.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range match {
			matches = matches && labels[k] == v
		}
		if !matches {
			continue
		}
		switch {
		case metric.Counter != nil:
			total += metric.GetCounter().GetValue()
		case metric.Gauge != nil:
			total += metric.GetGauge().GetValue()
		case metric.Untyped != nil:
			total += metric.GetUntyped().GetValue()
		}
	}
	return total
}

// describeLate summarises tokens replaced after they expired: how many, and the five replaced
// longest after expiry with their due time, answering request and expiry, in seconds from
// the window's start.
func describeLate(late []lateReplacement, start time.Time) string {
	if len(late) == 0 {
		return "0"
	}
	slices.SortFunc(late, func(a, b lateReplacement) int {
		return cmp.Compare(b.replaced.Sub(b.expiry), a.replaced.Sub(a.expiry))
	})
	at := func(t time.Time) string {
		if t.IsZero() {
			return "none"
		}
		return fmt.Sprintf("%+.1fs", t.Sub(start).Seconds())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d; most overdue:", len(late))
	for _, l := range late[:min(5, len(late))] {
		fmt.Fprintf(&b, " %s due %s, request %s, expired %s, replaced %s;", l.grant, at(l.due), at(l.request), at(l.expiry), at(l.replaced))
	}
	return strings.TrimSuffix(b.String(), ";")
}

func (m *managerProc) heapMiB() float64 {
	return m.scrape("go_memstats_heap_inuse_bytes", nil) / (1 << 20)
}

// heapSamples reads of heap in use, heapSampleEvery apart, give the figure reported: one
// read lands anywhere in a GC cycle (heap in use moves by a quarter of the live heap between
// collections at GOGC 25), so the median stands for the cycle and the range shows its swing.
const (
	heapSamples     = 9
	heapSampleEvery = time.Second
)

// heapMiBMedian is the median of heapSamples reads of heap in use, and the lowest and highest.
func (m *managerProc) heapMiBMedian() (float64, [2]float64) {
	reads := make([]float64, 0, heapSamples)
	for i := range heapSamples {
		if i > 0 {
			<-time.After(heapSampleEvery)
		}
		reads = append(reads, m.heapMiB())
	}
	slices.Sort(reads)
	return reads[len(reads)/2], [2]float64{reads[0], reads[len(reads)-1]}
}

// clearObservedGeneration sets every grant's status.observedGeneration to 0 while no
// manager runs. A decision always writes it back (with the rest of the status) and the
// decision does not depend on it, so the tracker's watch sees the moment the new leader has
// decided about each grant; a requeue that only waits for a cache writes nothing.
func clearObservedGeneration(ctx context.Context, c client.Client, kind grantKind, n int) {
	parallel(n, 16, func(i int) error {
		g := kind.empty()
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("g%05d", i)}, g); err != nil {
			return err
		}
		g.GrantStatus().ObservedGeneration = 0
		return c.Status().Update(ctx, g)
	})
}

// waitDecided waits until the watch has seen every grant decided since start (see
// clearObservedGeneration) and returns the seconds from start to the last decision seen.
func (t *tracker) waitDecided(n int, start time.Time) float64 {
	t.mu.Lock()
	t.decidedSince, t.decided = start, map[string]time.Time{}
	t.mu.Unlock()
	waitFor(10*time.Minute, "the restarted manager to decide about every grant", func() (bool, string) {
		t.mu.Lock()
		defer t.mu.Unlock()
		return len(t.decided) >= n, fmt.Sprintf("%d/%d grants decided", len(t.decided), n)
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	last := start
	for _, at := range t.decided {
		if at.After(last) {
			last = at
		}
	}
	t.decidedSince = time.Time{}
	return last.Sub(start).Seconds()
}

// parallel runs fn(0..n-1) on at most workers goroutines; the first error ends the bench.
func parallel(n, workers int, fn func(i int) error) {
	var g errgroup.Group
	g.SetLimit(workers)
	for i := range n {
		g.Go(func() error { return fn(i) })
	}
	must(g.Wait())
}

// waitFor polls cond every second until it holds, printing progress every 10 seconds.
func waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for range tick.C {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Since(last) >= 10*time.Second {
			say("  waiting for %s: %s", what, seen)
			last = time.Now()
		}
		if time.Now().After(deadline) {
			must(fmt.Errorf("timed out waiting for %s: %s", what, seen))
		}
	}
}

// progress waits for d, printing a status line every 15 seconds.
func progress(d time.Duration, status func() string) {
	done := time.After(d)
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			say("  %s", status())
		}
	}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}

func machine() string {
	mem := "unknown"
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if mi, err := fs.Meminfo(); err == nil && mi.MemTotal != nil {
			mem = fmt.Sprintf("%.1f GiB", float64(*mi.MemTotal)/(1<<20))
		}
	}
	return fmt.Sprintf("%d CPUs, %s memory", goruntime.NumCPU(), mem)
}

func report(r *results, dir string) {
	c := r.Config
	rows := [][2]string{
		{"limit on this host (refreshes a second the API server sustains for a refresh's calls)", r.LimitVerdict},
		{"refreshes a second: sustained / due / limit (fraction of the limit)", fmt.Sprintf("%.1f / %.1f / %.1f (%.2f)", r.SustainedPerSecond, r.DemandPerSecond, r.Limit.PerSecond, r.FractionOfLimit)},
		{"kube-apiserver CPU per refresh: grantkeeper / the limit loop", fmt.Sprintf("%.2f ms / %.2f ms", r.APIServerCPUMillis, r.Limit.APIServerCPUMillis)},
		{"the limit loop", reportLimit(r.Limit)},
		{"grants (kind) / token lifetime / fake Google latency", fmt.Sprintf("%d (%s) / %s / %s", c.Grants, c.Kind, c.TokenLifetime, c.Latency)},
		{"machine", r.Machine},
		{"creation to Ready p50 / p99 / max", fmt.Sprintf("%.2fs / %.2fs / %.2fs", r.ReadySeconds[0], r.ReadySeconds[1], r.ReadySeconds[2])},
		{"measured window", fmt.Sprintf("%.0fs (%d token lifetimes)", r.WindowSeconds, c.Cycles)},
		{"token requests in window", fmt.Sprintf("%d (%.0f per minute)", r.TokenRequests, float64(r.TokenRequests)/r.WindowSeconds*60)},
		{"token requests per due refresh (ideal 1.00)", fmt.Sprintf("%.3f (%d requests / %d due in the window)", r.RequestsPerDue, r.ChargedRequests, r.DueRefreshes)},
		{"due refreshes missed / grants with one (ideal 0)", fmt.Sprintf("%d / %d", r.MissedRefreshes, r.GrantsMissingRefresh)},
		{"grants without a token request for a whole token lifetime (ideal 0)", fmt.Sprintf("%d", r.GrantsWithoutRequest)},
		{"expired-token-seconds, by the fake's record of each token (ideal 0)", fmt.Sprintf("%.1f", r.ExpiredTokenSeconds)},
		{"tokens replaced after they expired, in the window (times from its start)", r.LateReplacements},
		{"API writes per refresh (Secret + status; ideal <= 2)", fmt.Sprintf("%.2f (%d Secret, %d grant)", r.WritesPerRefresh, r.SecretWrites, r.GrantWrites)},
		{"API requests per refresh, all the manager's (target <= 3)", fmt.Sprintf("%.2f (%.0f requests)", r.APIRequestsPerRefresh, r.APIRequests)},
		{"manager peak RSS", fmt.Sprintf("%.1f MiB", r.PeakRSSMiB)},
		{"highest manager RSS sampled (creation and window): what it was made of", fmt.Sprintf("%.0f MiB: %s", r.PeakSampleRSSMiB, r.PeakSampleBreakdown)},
		{"manager CPU", fmt.Sprintf("%.1fs total, %.2f ms per refresh", r.CPUSeconds, r.CPUPerRefreshMillis)},
		{"restart: early token requests (ideal 0) / all in first minute", fmt.Sprintf("%d / %d", r.RestartEarlyRequests, r.RestartRequests)},
		{"restart: time until the new leader decided every grant", fmt.Sprintf("%.2fs", r.RestartDecidedSeconds)},
		{"manager RSS (heap in use) after restart", fmt.Sprintf("%.1f MiB (%.1f MiB)", r.RSSBaseMiB, r.HeapBaseMiB)},
		{"heap in use per grant (target <= 5 KiB): median of 9 reads a second apart (lowest-highest)",
			fmt.Sprintf("%.2f KiB (%.2f-%.2f)", r.HeapPerGrantKiB, r.HeapRangeMiB[0]*1024/float64(c.Grants), r.HeapRangeMiB[1]*1024/float64(c.Grants))},
		{"live heap per grant (allocated bytes right after a GC)", fmt.Sprintf("%.1f KiB (%.1f MiB)", r.LiveHeapPerGrantKiB, r.LiveHeapMiB)},
		{"window CPU seconds by process (load average at start / end)", fmt.Sprintf("%s (%s / %s)", r.WindowCPUSeconds, r.LoadAverage[0], r.LoadAverage[1])},
		{"API server mean request latency in window, by verb", formatMillis(r.APILatencyMillis)},
	}
	if c.Unrelated > 0 {
		rows = append(rows, [2]string{fmt.Sprintf("... with %d unrelated %d KiB Secrets", c.Unrelated, c.UnrelatedSize>>10),
			fmt.Sprintf("%.1f MiB (%.1f MiB): %+.1f MiB RSS", r.RSSUnrelatedMiB, r.HeapUnrelatedMiB, r.RSSUnrelatedMiB-r.RSSBaseMiB)})
	}
	fmt.Println()
	fmt.Println("| measure | result |")
	fmt.Println("| --- | --- |")
	for _, row := range rows {
		fmt.Printf("| %s | %s |\n", row[0], row[1])
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	out := filepath.Join(dir, fmt.Sprintf("results-%d.json", c.Grants))
	_ = os.WriteFile(out, b, 0o644)
	fmt.Printf("\nJSON: %s\n", out)
}

// earliestDue is the earliest a token the fake issued may be replaced (documentedRefresh).
func earliestDue(t fakegoogle.IssuedToken) time.Time {
	earliest, _ := documentedRefresh(t)
	return earliest
}
