// Package metrics exposes grantkeeper's Prometheus metrics on controller-runtime's metrics
// endpoint: per-grant state read from the cache at scrape time (so a deleted grant leaves no
// stale series), and counters and a histogram of token and revoke requests.
package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
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
		(&GrantCollector{}).Describe(ch)
		close(ch)
	}()
	var out []string
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
	// Google's side of the grant, for joins: which OAuth client and which account. Apart
	// from grantkeeper_grant_client_info (the Kubernetes object the client comes from),
	// which stays so queries built on it keep working.
	infoDesc = prometheus.NewDesc("grantkeeper_grant_info",
		"Always 1; client_id is the grant's OAuth client id and account the Google account's email (status.account), each empty when not known.",
		[]string{"namespace", "name", "client_id", "account"}, nil)
	refreshTokenExpiryDesc = prometheus.NewDesc("grantkeeper_refresh_token_expiration_timestamp_seconds",
		"Unix time at which the grant's refresh token itself stops working (status.refreshTokenExpiresAt: time-based access, Testing-status apps); absent when Google did not say.",
		[]string{"namespace", "name"}, nil)
	failuresDesc = prometheus.NewDesc("grantkeeper_grant_consecutive_failures",
		"Refresh failures since the grant's last successful refresh (status.failedRefreshAttempts); 0 when the last one succeeded.",
		[]string{"namespace", "name"}, nil)
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
	// Reader is the manager's cache: grants and client objects.
	Reader client.Reader
	// SecretMeta (the controller's metadata watch of the Secrets grants name) and Live (the
	// API server) give grantkeeper_grant_info its client_id for clients held in Secrets,
	// whose data is not cached: a Secret is read when its version changed. Either nil
	// leaves client_id empty for those grants.
	SecretMeta, Live client.Reader

	ids clientIDs
}

// Readers are where a scrape looks things up.
type Readers struct {
	Cache, SecretMeta, Live client.Reader
}

// Describe implements prometheus.Collector.
func (c *GrantCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- readyDesc
	ch <- revokedDesc
	ch <- expiryDesc
	ch <- nextRefreshDesc
	ch <- clientDesc
	ch <- infoDesc
	ch <- refreshTokenExpiryDesc
	ch <- failuresDesc
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
	seen := map[types.NamespacedName]bool{}
	defer c.ids.forgetExcept(seen)
	liveUntil := time.Now().Add(liveReadBudget)
	for i := range grants.Items {
		g := &grants.Items[i]
		for _, m := range grantSeries(g, c.ids.lookup(ctx, Readers{c.Reader, c.SecretMeta, c.Live}, g, seen, liveUntil)) {
			ch <- m
		}
	}
}

// grantSeries is every per-grant series of g; clientID is its OAuth client's id ("" if unknown).
func grantSeries(g *oauthv1alpha1.GoogleOAuthGrant, clientID string) []prometheus.Metric {
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{g.Namespace, g.Name}, extra...)...))
	}
	ready, reason := 0.0, "Unknown"
	if cond := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady); cond != nil {
		reason = cond.Reason
		if cond.Status == metav1.ConditionTrue {
			ready = 1
		}
	}
	gauge(readyDesc, ready, reason)
	revoked := 0.0
	if meta.IsStatusConditionTrue(g.Status.Conditions, oauthv1alpha1.ConditionRevoked) {
		revoked = 1
	}
	gauge(revokedDesc, revoked)
	kind, name := grantClient(g)
	gauge(clientDesc, 1, kind, name)
	account := ""
	if a := g.Status.Account; a != nil {
		account = a.Email
	}
	gauge(infoDesc, 1, clientID, account)
	gauge(failuresDesc, float64(g.Status.FailedRefreshAttempts))
	if t := g.Status.ExpiresAt; t != nil {
		gauge(expiryDesc, float64(t.Unix()))
	}
	if t := g.Status.RefreshTime; t != nil {
		gauge(nextRefreshDesc, float64(t.Unix()))
	}
	if t := g.Status.RefreshTokenExpiresAt; t != nil {
		gauge(refreshTokenExpiryDesc, float64(t.Unix()))
	}
	return out
}
