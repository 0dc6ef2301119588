// Package metrics exposes grantkeeper's Prometheus metrics on controller-runtime's metrics
// endpoint: per-grant state read from the cache at scrape time (so a deleted grant leaves no
// stale series), and counters and a histogram of token and revoke requests.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
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

func init() {
	ctrlmetrics.Registry.MustRegister(TokenRequests, TokenRequestDuration, RevokeRequests)
}

// Per-grant series, computed at scrape time.
var (
	readyDesc = prometheus.NewDesc("grantkeeper_grant_ready",
		"1 when the grant's Ready condition is True, else 0; reason is the condition's reason.",
		[]string{"namespace", "name", "reason"}, nil)
	revokedDesc = prometheus.NewDesc("grantkeeper_grant_revoked",
		"1 when Google rejected the grant's refresh token (Revoked=True), else 0.",
		[]string{"namespace", "name"}, nil)
	expiryDesc = prometheus.NewDesc("grantkeeper_access_token_expiration_timestamp_seconds",
		"Unix time at which the access token in the grant's derived Secret expires.",
		[]string{"namespace", "name"}, nil)
	nextRefreshDesc = prometheus.NewDesc("grantkeeper_next_refresh_timestamp_seconds",
		"Unix time at which the grant's next refresh (or retry) is due.",
		[]string{"namespace", "name"}, nil)
	// A separate info series rather than a label on grantkeeper_grant_ready, so alert rules
	// and dashboards keyed on that series keep working; join on (namespace, name).
	clientDesc = prometheus.NewDesc("grantkeeper_grant_client_info",
		"Always 1; client_kind (Secret, GoogleOAuthClient, ClusterGoogleOAuthClient or AuthorizedUser) and client (the Secret's or client object's name) say where the grant's OAuth client comes from.",
		[]string{"namespace", "name", "client_kind", "client"}, nil)
)

// grantClient is where a grant's OAuth client comes from, for grantkeeper_grant_client_info.
func grantClient(g *oauthv1alpha1.GoogleOAuthGrant) (kind, name string) {
	switch {
	case g.Spec.ClientRef != nil:
		return g.ClientRefKind(), g.Spec.ClientRef.Name
	case g.UsesAuthorizedUser():
		return "AuthorizedUser", g.Spec.AuthorizedUserSecretRef.Name
	}
	return "Secret", g.ClientSecretName()
}

// GrantCollector reports every grant's state from the manager's cache when scraped.
type GrantCollector struct {
	Reader client.Reader
}

// Describe implements prometheus.Collector.
func (c *GrantCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- readyDesc
	ch <- revokedDesc
	ch <- expiryDesc
	ch <- nextRefreshDesc
	ch <- clientDesc
}

// Collect implements prometheus.Collector.
func (c *GrantCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var grants oauthv1alpha1.GoogleOAuthGrantList
	// The cache's own objects, read only: a deep copy of every grant per scrape is
	// megabytes of garbage at 10,000 grants, every 30 seconds.
	if err := c.Reader.List(ctx, &grants, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(readyDesc, err)
		return
	}
	for i := range grants.Items {
		g := &grants.Items[i]
		ready, reason := 0.0, "Unknown"
		if cond := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady); cond != nil {
			reason = cond.Reason
			if cond.Status == "True" {
				ready = 1
			}
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready, g.Namespace, g.Name, reason)
		revoked := 0.0
		if meta.IsStatusConditionTrue(g.Status.Conditions, oauthv1alpha1.ConditionRevoked) {
			revoked = 1
		}
		ch <- prometheus.MustNewConstMetric(revokedDesc, prometheus.GaugeValue, revoked, g.Namespace, g.Name)
		kind, name := grantClient(g)
		ch <- prometheus.MustNewConstMetric(clientDesc, prometheus.GaugeValue, 1, g.Namespace, g.Name, kind, name)
		if t := g.Status.ExpiresAt; t != nil {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(t.Unix()), g.Namespace, g.Name)
		}
		if t := g.Status.RefreshTime; t != nil {
			ch <- prometheus.MustNewConstMetric(nextRefreshDesc, prometheus.GaugeValue, float64(t.Unix()), g.Namespace, g.Name)
		}
	}
}
