package metrics

import (
	"context"
	"io"
	"strconv"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
)

// Per-grant series are written here in the text exposition format rather than collected
// through client_golang: a collector builds every series as a const metric with its label
// pairs, and the registry sorts them all into families before the first byte goes out. At
// 10,000 grants that was about 70,000 series and 40 MB of heap per scrape, the manager's
// memory peak (docs/benchmarks.md). Written a line at a time from the cache, a scrape holds
// one list of the cache's grants and a line buffer. The format is written by hand because
// client_golang's encoder (expfmt) takes whole families, the very thing not to build; the
// tests parse every output with its parser.

// grantFamily is one per-grant gauge: its name and help, and the labels (sorted by name, as
// client_golang writes them, so queries and tests see the same text) and value of a grant's
// series; ok is false when the grant has none (a timestamp not known yet).
type grantFamily struct {
	name, help string
	sample     func(l *line, g oauthv1alpha1.Grant) (ok bool)
}

var grantFamilies = []grantFamily{{
	name: "grantkeeper_grant_ready",
	help: "1 when the grant's Ready condition is True, else 0; reason is the condition's reason.",
	sample: func(l *line, g oauthv1alpha1.Grant) bool {
		ready, reason := 0.0, "Unknown"
		if cond := meta.FindStatusCondition(g.GrantStatus().Conditions, oauthv1alpha1.ConditionReady); cond != nil {
			reason = cond.Reason
			if cond.Status == metav1.ConditionTrue {
				ready = 1
			}
		}
		l.labels("kind", g.GrantKind(), "name", g.GetName(), "namespace", g.GetNamespace(), "reason", reason)
		l.value(ready)
		return true
	},
}, {
	name: "grantkeeper_grant_revoked",
	help: "1 when the token endpoint rejected the grant's refresh token (Revoked=True), else 0; kind is the grant's kind (GoogleOAuthGrant, OAuthGrant).",
	sample: func(l *line, g oauthv1alpha1.Grant) bool {
		l.labels("kind", g.GrantKind(), "name", g.GetName(), "namespace", g.GetNamespace())
		l.value(boolValue(meta.IsStatusConditionTrue(g.GrantStatus().Conditions, oauthv1alpha1.ConditionRevoked)))
		return true
	},
}, {
	// A separate info series rather than a label on grantkeeper_grant_ready, so alert rules
	// and dashboards keyed on that series keep working; join on (namespace, name).
	name: "grantkeeper_grant_client_info",
	help: "Always 1; client_kind (Secret, GoogleOAuthClient, ClusterGoogleOAuthClient, AuthorizedUser, OAuthClient or ClusterOAuthClient) and client (the Secret's or client object's name) say where the grant's OAuth client comes from.",
	sample: func(l *line, g oauthv1alpha1.Grant) bool {
		kind, name := grantClient(g)
		l.labels("client", name, "client_kind", kind, "kind", g.GrantKind(), "name", g.GetName(), "namespace", g.GetNamespace())
		l.value(1)
		return true
	},
}, {
	// Google's side of the grant, for joins: which OAuth client and which account. Apart
	// from grantkeeper_grant_client_info (the Kubernetes object the client comes from),
	// which stays so queries built on it keep working.
	name: "grantkeeper_grant_info",
	help: "Always 1; client_id is the OAuth client the grant's last token request used (status.clientID) and account the Google account's email (status.account), each empty when not known.",
	sample: func(l *line, g oauthv1alpha1.Grant) bool {
		account := ""
		if a := g.GrantStatus().Account; a != nil {
			account = a.Email
		}
		l.labels("account", account, "client_id", g.GrantStatus().ClientID, "kind", g.GrantKind(), "name", g.GetName(), "namespace", g.GetNamespace())
		l.value(1)
		return true
	},
}, {
	name: "grantkeeper_grant_consecutive_failures",
	help: "Refresh failures since the grant's last successful refresh (status.failedRefreshAttempts); 0 when the last one succeeded.",
	sample: func(l *line, g oauthv1alpha1.Grant) bool {
		l.labels("kind", g.GrantKind(), "name", g.GetName(), "namespace", g.GetNamespace())
		l.value(float64(g.GrantStatus().FailedRefreshAttempts))
		return true
	},
}, {
	name:   "grantkeeper_access_token_expiration_timestamp_seconds",
	help:   "Unix time at which the access token in the grant's derived Secret expires.",
	sample: timestamp(func(s *oauthv1alpha1.GrantStatus) *metav1.Time { return s.ExpiresAt }),
}, {
	name:   "grantkeeper_next_refresh_timestamp_seconds",
	help:   "Unix time at which the grant's next refresh (or retry) is due.",
	sample: timestamp(func(s *oauthv1alpha1.GrantStatus) *metav1.Time { return s.RefreshTime }),
}, {
	name:   "grantkeeper_refresh_token_expiration_timestamp_seconds",
	help:   "Unix time at which the grant's refresh token itself stops working (status.refreshTokenExpiresAt: time-based access, Testing-status apps); absent when Google did not say.",
	sample: timestamp(func(s *oauthv1alpha1.GrantStatus) *metav1.Time { return s.RefreshTokenExpiresAt }),
}}

// timestamp is the sample of a status time, absent while the time is not known.
func timestamp(field func(*oauthv1alpha1.GrantStatus) *metav1.Time) func(*line, oauthv1alpha1.Grant) bool {
	return func(l *line, g oauthv1alpha1.Grant) bool {
		t := field(g.GrantStatus())
		if t == nil {
			return false
		}
		l.labels("kind", g.GrantKind(), "name", g.GetName(), "namespace", g.GetNamespace())
		l.value(float64(t.Unix()))
		return true
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// grantClient is where a grant's OAuth client comes from, for grantkeeper_grant_client_info.
func grantClient(g oauthv1alpha1.Grant) (kind, name string) {
	return grantinputs.Of(g).ClientLabel()
}

// writeGrants writes every family of the grants' series, each family's lines together as the
// format requires, a family with no series left out.
func writeGrants(w io.Writer, grants []oauthv1alpha1.Grant) error {
	var l line
	for _, f := range grantFamilies {
		started := false
		for i := range grants {
			l.b = append(l.b[:0], f.name...)
			if !f.sample(&l, grants[i]) {
				continue
			}
			if !started {
				started = true
				if _, err := io.WriteString(w, "# HELP "+f.name+" "+f.help+"\n# TYPE "+f.name+" gauge\n"); err != nil {
					return err
				}
			}
			if _, err := w.Write(l.b); err != nil {
				return err
			}
		}
	}
	return nil
}

// line builds one series line of the text format in a reused buffer.
type line struct{ b []byte }

// labels appends {k="v",...}; values are escaped as the format says (backslash, double
// quote, newline) and invalid UTF-8 replaced: a client id comes from a user's Secret.
func (l *line) labels(kv ...string) {
	l.b = append(l.b, '{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			l.b = append(l.b, ',')
		}
		l.b = append(l.b, kv[i]...)
		l.b = append(l.b, `="`...)
		for _, r := range kv[i+1] { // ranging over a string yields U+FFFD for invalid bytes
			switch r {
			case '\\':
				l.b = append(l.b, `\\`...)
			case '"':
				l.b = append(l.b, `\"`...)
			case '\n':
				l.b = append(l.b, `\n`...)
			default:
				l.b = utf8.AppendRune(l.b, r)
			}
		}
		l.b = append(l.b, '"')
	}
	l.b = append(l.b, '}')
}

// value ends the line with the sample's value, formatted as client_golang formats it.
func (l *line) value(v float64) {
	l.b = append(l.b, ' ')
	l.b = strconv.AppendFloat(l.b, v, 'g', -1, 64)
	l.b = append(l.b, '\n')
}

// GrantSeries writes every grant's series from the manager's cache when scraped.
type GrantSeries struct {
	// Cache is the manager's cache.
	Cache client.Reader
}

// list reads the grants from the cache: the cache's own objects, read only, since a deep
// copy of every grant per scrape is megabytes of garbage at 10,000 grants.
func (s *GrantSeries) list(ctx context.Context) ([]oauthv1alpha1.Grant, error) {
	var google oauthv1alpha1.GoogleOAuthGrantList
	if err := s.Cache.List(ctx, &google, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var providers oauthv1alpha1.OAuthGrantList
	if err := s.Cache.List(ctx, &providers, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := make([]oauthv1alpha1.Grant, 0, len(google.Items)+len(providers.Items))
	for i := range google.Items {
		out = append(out, &google.Items[i])
	}
	for i := range providers.Items {
		out = append(out, &providers.Items[i])
	}
	return out, nil
}

// Write writes every grant's series in the text exposition format.
func (s *GrantSeries) Write(ctx context.Context, w io.Writer) error {
	grants, err := s.list(ctx)
	if err != nil {
		return err
	}
	return writeGrants(w, grants)
}
