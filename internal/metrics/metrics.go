// Package metrics exposes grantkeeper's Prometheus metrics on controller-runtime's metrics
// endpoint: counters and a histogram of token and revoke requests in client_golang's
// registry, and per-grant state written straight from the cache at scrape time (so a deleted
// grant leaves no stale series, and a scrape holds no copy of them: see Handler).
package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/grantkeeper/grantkeeper/internal/tokenerr"
)

var (
	// TokenRequests counts token-endpoint requests by result: success, invalid_grant,
	// invalid_client, rejected, delegation_denied, transient.
	TokenRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grantkeeper_token_requests_total",
		Help: "Requests to the OAuth token endpoint, by result (success, invalid_grant, invalid_client, rejected, delegation_denied, transient).",
	}, []string{"result"})
	// TokenRequestDuration observes token-endpoint latency.
	TokenRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "grantkeeper_token_request_duration_seconds",
		Help:    "Latency of requests to the OAuth token endpoint, by result.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"result"})
	// RevokeRequests counts revocation requests by result: success, already_invalid, transient, failed.
	RevokeRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grantkeeper_revoke_requests_total",
		Help: "Requests to the OAuth revocation endpoint, by result (success, already_invalid, transient, failed).",
	}, []string{"result"})
)

// TokenResults and RevokeResults are every value of the result label.
var (
	TokenResults  = append([]string{"success"}, kindNames()...)
	RevokeResults = []string{"success", "already_invalid", "transient", "failed"}
)

func kindNames() []string {
	var out []string
	for _, k := range tokenerr.Kinds {
		out = append(out, k.String())
	}
	return out
}

func init() {
	ctrlmetrics.Registry.MustRegister(TokenRequests, TokenRequestDuration, RevokeRequests)
	// Every result starts at 0, so the first failure of a kind shows in increase() and
	// rate() (a series born at 1 shows no increase) and dashboards have every result.
	for _, r := range TokenResults {
		TokenRequests.WithLabelValues(r)
		TokenRequestDuration.WithLabelValues(r)
	}
	for _, r := range RevokeResults {
		RevokeRequests.WithLabelValues(r)
	}
}

// Names are the names of every series this package exports (a histogram's _bucket, _sum and
// _count), for the checks that keep dashboards from naming series that do not exist.
func Names() []string {
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		TokenRequests.Describe(ch)
		RevokeRequests.Describe(ch)
		close(ch)
	}()
	var out []string
	for _, f := range grantFamilies {
		out = append(out, f.name)
	}
	for d := range ch {
		out = append(out, descName(d))
	}
	hist := make(chan *prometheus.Desc, 1)
	TokenRequestDuration.Describe(hist)
	base := descName(<-hist)
	return append(out, base+"_bucket", base+"_sum", base+"_count")
}

// descName reads a Desc's name, which client_golang only shows in Desc.String().
func descName(d *prometheus.Desc) string {
	s := d.String()
	const key = `fqName: "`
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	s = s[i+len(key):]
	return s[:strings.IndexByte(s, '"')]
}
