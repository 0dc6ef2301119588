package main

import (
	"flag"
	"net/http"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
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
// one that reads from the manager's cache and writes on that config.
func (f *endpointFlags) clients(mgr ctrl.Manager) (live client.Client, cached client.Client, err error) {
	cfg := f.config(mgr.GetConfig())
	opts := client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()}
	if live, err = client.New(cfg, opts); err != nil {
		return nil, nil, err
	}
	opts.Cache = &client.CacheOptions{Reader: mgr.GetCache()}
	cached, err = client.New(cfg, opts)
	return live, cached, err
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
