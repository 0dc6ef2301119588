// Command manager runs the grantkeeper controller manager.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/go-logr/logr"
	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/egress"
	"github.com/grantkeeper/grantkeeper/internal/googleapi"
	"github.com/grantkeeper/grantkeeper/internal/httplimit"
	"github.com/grantkeeper/grantkeeper/internal/metrics"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/scrapeauth"
	"github.com/grantkeeper/grantkeeper/internal/shutdownlog"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		metricsAddr, probeAddr string
		metricsSecure          bool
		metricsCertDir         string
		pprofAddr              string
		leaderElect            bool
		leaderElectionNS       string
		tokenURL, revokeURL    string
		requestTimeout         time.Duration
		maxConcurrent          int
		namespaces             string
		managerNamespace       string
		qps                    float64
		burst                  int
		showVersion            bool
		componentsFlag         string
		providerEgress         egress.Policy
	)
	flag.StringVar(&componentsFlag, "components", string(componentsAll), componentsHelp)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	flag.BoolVar(&metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS to clients whose Kubernetes token may get /metrics (the metrics-reader ClusterRole); false serves plain HTTP to anyone.")
	flag.StringVar(&metricsCertDir, "metrics-cert-dir", "", "Directory holding tls.crt and tls.key for the metrics endpoint (default: a self-signed certificate made at start).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "Address for Go's pprof endpoints (debugging memory and CPU); 0 disables them.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica refreshes tokens.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader-election Lease (default: the pod's namespace).")
	flag.StringVar(&tokenURL, "token-url", googleapi.TokenURL, "OAuth 2.0 token endpoint. Must be https unless the host is loopback.")
	flag.StringVar(&revokeURL, "revoke-url", googleapi.RevokeURL, "OAuth 2.0 revocation endpoint. Must be https unless the host is loopback.")
	flag.DurationVar(&requestTimeout, "token-request-timeout", 30*time.Second, "Timeout of one request to the token or revocation endpoint.")
	flag.IntVar(&maxConcurrent, "max-concurrent-reconciles", 32, "Grants reconciled in parallel (token requests are I/O-bound: a worker mostly waits for Google and the API server).")
	flag.StringVar(&managerNamespace, "manager-namespace", os.Getenv("POD_NAMESPACE"), "Namespace the manager runs in (default: $POD_NAMESPACE, set from the downward API); where a ClusterGoogleOAuthClient's Secret is when its spec.secretRef names no namespace.")
	flag.StringVar(&namespaces, "namespaces", "", "Comma-separated namespaces to manage grants in (default: all). Pair with RoleBindings instead of the ClusterRoleBinding.")
	flag.Float64Var(&qps, "kube-api-qps", 1000, "Queries per second to the Kubernetes API server (a refresh costs three: a read of the refresh-token Secret, the derived Secret write and the status write; see docs/benchmarks.md).")
	flag.IntVar(&burst, "kube-api-burst", 2000, "Burst of queries to the Kubernetes API server. This client-side limit is a ceiling, not a pace: the API server's priority and fairness decide who waits.")
	var consentOpts consentFlags
	consentOpts.bind(flag.CommandLine)
	// The Pod injection webhook (cmd/manager/webhook.go).
	webhookOpts := bindWebhookFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	var riscOpts riscFlags
	riscOpts.bind(flag.CommandLine)
	var endpoints endpointFlags
	endpoints.bind(flag.CommandLine)
	flag.BoolVar(&providerEgress.AllowPrivate, "allow-private-network-providers", false, "Let OAuthClients' issuerURL and endpoints reach private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): a provider inside the cluster or the company network. Off, any tenant allowed to create an OAuthClient could make the manager send requests to services inside the cluster. Link-local addresses (the cloud metadata server) are never allowed.")
	flag.BoolVar(&providerEgress.AllowLoopback, "allow-loopback-providers", false, "Let OAuthClients' issuerURL and endpoints reach loopback addresses, the manager Pod's own network namespace (its metrics, health and pprof ports). For tests and local development only.")
	flag.BoolVar(&showVersion, "version", false, "Print the version and exit.")
	flag.Parse()
	if showVersion {
		fmt.Println(version.Line("manager"))
		return nil
	}
	comps, err := parseComponents(componentsFlag)
	if err != nil {
		return err
	}
	if err := comps.check(consentOpts.bindAddress, riscOpts.bindAddress, webhookOpts.enabled); err != nil {
		return err
	}
	namespaceList := strings.FieldsFunc(namespaces, func(r rune) bool { return r == ',' })
	// Stopping (SIGTERM) cancels work under way on purpose; that is not an error to log.
	stopping := ctrl.SetupSignalHandler()
	ctrl.SetLogger(shutdownlog.New(zap.New(zap.UseFlagOptions(&zapOpts)), stopping))
	log := ctrl.Log.WithName("setup")
	if soft := setMemoryDefaults(os.Getenv, cgroupFS()); soft > 0 {
		log.Info("soft memory limit set from the container's", "bytes", soft)
	}

	for name, u := range map[string]string{"--token-url": tokenURL, "--revoke-url": revokeURL} {
		if err := tokenclient.ValidateURL(u); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(oauthv1alpha1.AddToScheme(scheme))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(qps), burst

	// Its cache is set once the manager exists; read only when scraped.
	grantSeries := &metrics.GrantSeries{}
	cacheOpts, clientOpts := controllers.CacheOptions(namespaceList...), client.Options{}
	if !comps.controllers() {
		// The endpoints alone: no Secret cache (their identity may not list or watch
		// Secrets), so every Secret read is a GET by name; no leader (every replica serves).
		cacheOpts = endpointsCacheOptions(namespaceList)
		clientOpts.Cache = &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}
		leaderElect = false
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Cache:  cacheOpts,
		Client: clientOpts,
		Metrics: metricsserver.Options{
			BindAddress:   metricsAddr,
			SecureServing: metricsSecure,
			CertDir:       metricsCertDir,
			// Every scrape is checked with a TokenReview and a SubjectAccessReview for
			// "get /metrics": per-grant series name namespaces and grants. The filter also
			// puts internal/metrics' handler in place of client_golang's.
			FilterProvider: metricsFilter(metricsSecure, grantSeries, &endpoints),
			// HTTP/2 is off: it has had rapid-reset and stream-cancellation CVEs.
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
		},
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "grantkeeper.oauth.grantkeeper.dev",
		LeaderElectionNamespace: leaderElectionNS,
		// Stop work promptly on a leader change so two replicas never refresh at once.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	tokens := &tokenclient.Endpoint{
		TokenURL:  tokenURL,
		RevokeURL: revokeURL,
		HTTP:      tokenclient.NewHTTPClient(requestTimeout),
	}
	endpointLive, endpointCached, err := endpoints.clients(mgr, !comps.controllers())
	if err != nil {
		return fmt.Errorf("the endpoints' API client: %w", err)
	}
	consentLinks, err := consentOpts.setup(mgr, comps, tokens, managerNamespace, namespaceList, endpointServing{live: endpointLive, limit: endpoints.limit(consentLimits, true)})
	if err != nil {
		return err
	}
	var tokenIndex *controllers.TokenIndex
	if comps.endpoints() {
		if tokenIndex, err = riscOpts.setup(mgr, clock.RealClock{}, namespaces != "", endpointServing{live: endpointLive, cached: endpointCached, limit: endpoints.limit(riscLimits, true)}); err != nil {
			return fmt.Errorf("setting up the security-event receiver: %w", err)
		}
	}
	grantSeries.Cache = mgr.GetClient()
	if !comps.controllers() {
		// The grants' series are the manager's: the endpoints' metrics (when served) carry
		// only their own counters, so a scrape of both never doubles a grant.
		grantSeries.Cache = noGrants{mgr.GetClient()}
	}
	if comps.controllers() {
		recorder, err := grantEvents(mgr, "grantkeeper", ctrl.Log.WithName("events"))
		if err != nil {
			return err
		}
		if _, err := controllers.Setup(mgr, controllers.Config{
			Options:  controllers.Options{MaxConcurrentReconciles: maxConcurrent, NamespacesOnly: namespaces != ""},
			Recorder: recorder, Tokens: tokens, Consent: consentLinks,
			Clock: clock.RealClock{}, Backoff: schedule.DefaultBackoff, ManagerNamespace: managerNamespace,
			TokenIndex: tokenIndex, Egress: providerEgress,
		}); err != nil {
			return err
		}
		if err := webhookOpts.setup(stopping, mgr, managerNamespace, httplimit.New(webhookLimits)); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting manager", "components", comps, "tokenURL", tokenURL, "revokeURL", revokeURL, "leaderElect", leaderElect, "metricsSecure", metricsSecure)
	return mgr.Start(stopping)
}

// metricsFilter serves /metrics with internal/metrics.Handler, which writes the per-grant
// series without holding them (controller-runtime's server takes no other handler for that
// path). It checks each scrape with a TokenReview and a SubjectAccessReview when the metrics
// endpoint is secure (kubebuilder's default), and not otherwise. internal/scrapeauth answers
// as controller-runtime's filters.WithAuthenticationAndAuthorization does, without linking
// k8s.io/apiserver (about 23 MiB of RSS).
//
// The guard's reviews go through the endpoints' low-QPS client, and scrapes are limited per
// client (internal/httplimit) before any review.
func metricsFilter(secure bool, grants *metrics.GrantSeries, endpoints *endpointFlags) func(*rest.Config, *http.Client) (metricsserver.Filter, error) {
	return func(cfg *rest.Config, hc *http.Client) (metricsserver.Filter, error) {
		auth := func(_ logr.Logger, h http.Handler) (http.Handler, error) { return h, nil }
		if secure {
			var err error
			if auth, err = scrapeauth.New(endpoints.config(cfg), hc); err != nil {
				return nil, err
			}
		}
		limit := endpoints.limit(metricsLimits, false)
		return func(log logr.Logger, h http.Handler) (http.Handler, error) {
			guarded, err := auth(log, metrics.Handler(h, ctrlmetrics.Registry, grants))
			if err != nil {
				return nil, err
			}
			return limit(guarded), nil
		}, nil
	}
}
