package main

import (
	"flag"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/grantkeeper/grantkeeper/internal/httplimit"
)

// endpointFlags configure what the served endpoints (consent links, the security-event
// receiver, the injection webhook, the metrics guard) may cost (issue 28): their own
// low-QPS API client, so requests from outside cannot starve refreshes, and per-client rate
// limits with a cap on requests in flight.
type endpointFlags struct {
	qps            float64
	burst          int
	clientIPHeader string
}

func (f *endpointFlags) bind(fs *flag.FlagSet) {
	fs.Float64Var(&f.qps, "endpoint-kube-api-qps", 20, "Queries per second to the Kubernetes API server from the served endpoints (consent links, security-event receiver, injection webhook, metrics guard), on a client of their own apart from --kube-api-qps: they answer from the informer cache and read live only right before a write.")
	fs.IntVar(&f.burst, "endpoint-kube-api-burst", 40, "Burst of --endpoint-kube-api-qps.")
	fs.StringVar(&f.clientIPHeader, "endpoint-client-ip-header", "", "Header whose right-most address is the client for the per-client rate limits of the consent server and security-event receiver (X-Forwarded-For or X-Real-IP behind an Ingress you trust to set it); empty: the connection's peer.")
}

// config is cfg with the endpoints' rate limits.
func (f *endpointFlags) config(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = float32(f.qps), f.burst
	c.RateLimiter = nil
	return c
}

// clients are the endpoints' API clients: live reads and writes on the low-QPS config, and
// one that reads from the manager's cache and writes on that config. With secretsLive
// (--components=endpoints) the second reads Secrets live too, by name: that process has no
// Secret cache and its identity may not list or watch Secrets.
func (f *endpointFlags) clients(mgr ctrl.Manager, secretsLive bool) (live client.Client, cached client.Client, err error) {
	cfg := f.config(mgr.GetConfig())
	opts := client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()}
	if live, err = client.New(cfg, opts); err != nil {
		return nil, nil, err
	}
	opts.Cache = &client.CacheOptions{Reader: mgr.GetCache()}
	if secretsLive {
		opts.Cache.DisableFor = []client.Object{&corev1.Secret{}}
	}
	cached, err = client.New(cfg, opts)
	return live, cached, err
}

// endpointsCacheOptions is the cache of --components=endpoints: grants and OAuth client
// objects (what the consent server and receiver read from a cache), in the managed
// namespaces; Secrets are never cached (client DisableFor), so no list or watch of them.
func endpointsCacheOptions(namespaces []string) cache.Options {
	o := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if len(namespaces) > 0 {
		o.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return o
}

// The limits of each endpoint, per client (address) and in flight.
var (
	// A person's browser: a link, a redirect, a callback.
	consentLimits = httplimit.Limits{Rate: 2, Burst: 10, MaxInFlight: 32}
	// Google delivers events one at a time, from a few addresses.
	riscLimits = httplimit.Limits{Rate: 10, Burst: 50, MaxInFlight: 32}
	// The API server calls the webhook for each annotated Pod it admits: the rate is per
	// namespace (inject.Handler.Limit), the in-flight cap for all.
	webhookLimits = httplimit.Limits{Rate: 50, Burst: 200, MaxInFlight: 64}
	// A scraper every few seconds.
	metricsLimits = httplimit.Limits{Rate: 1, Burst: 10, MaxInFlight: 8}
)

// limit is a middleware with l's limits (and the client header, for endpoints behind an Ingress).
func (f *endpointFlags) limit(l httplimit.Limits, behindIngress bool) func(http.Handler) http.Handler {
	if behindIngress {
		l.ClientIPHeader = f.clientIPHeader
	}
	return httplimit.New(l).Wrap
}

// endpointServing is what an endpoint's setup gets: the low-QPS clients and its limiter.
type endpointServing struct {
	live, cached client.Client
	limit        func(http.Handler) http.Handler
}
