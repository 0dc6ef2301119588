package controllers_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/metrics"
	"github.com/grantkeeper/grantkeeper/test/framework/promtext"
)

// TestMetrics: per-grant series come from the cache at scrape time and vanish with the
// grant; token requests are counted by result.
func TestMetrics(t *testing.T) {
	h := newHarness(t)
	grants := &metrics.GrantSeries{Cache: h.cached}
	successes := testutil.ToFloat64(metrics.TokenRequests.WithLabelValues("success"))
	invalid := testutil.ToFloat64(metrics.TokenRequests.WithLabelValues("invalid_grant"))

	h.credentials("good")
	h.grant("good")
	g := h.waitReady("good")
	rt := h.google.NewRefreshToken(clientID, analytics)
	h.google.RevokeRefreshToken(rt)
	h.secret("gone-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.secret("gone-refresh-token", map[string]string{"refresh_token": rt})
	h.grant("gone")
	h.waitCondition("gone", oauthv1alpha1.ConditionRevoked, "True", oauthv1alpha1.ReasonInvalidGrant)
	h.localClient("shared", "good-client")
	h.refGrant("shared-user", oauthv1alpha1.KindGoogleOAuthClient, "shared")
	h.waitReady("shared-user")

	series := func() string {
		var b strings.Builder
		if err := grants.Write(h.Ctx, &b); err != nil {
			t.Fatal(err)
		}
		lines, err := promtext.Lines(b.String())
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n") + "\n"
	}
	var got string
	// The series come from the cache, which may not show yet what waitReady read live.
	h.Eventually(10*time.Second, "series for the three grants", func() (bool, string) {
		got = series()
		return strings.Contains(got, "grantkeeper_grant_ready kind=GoogleOAuthGrant name=gone namespace="+h.Name+" reason=InvalidGrant 0") &&
			strings.Contains(got, "grantkeeper_grant_ready kind=GoogleOAuthGrant name=good namespace="+h.Name+" reason=TokenValid 1") &&
			strings.Contains(got, "grantkeeper_grant_ready kind=GoogleOAuthGrant name=shared-user namespace="+h.Name+" reason=TokenValid 1"), got
	})
	for _, want := range []string{
		"grantkeeper_grant_revoked kind=GoogleOAuthGrant name=gone namespace=" + h.Name + " 1",
		"grantkeeper_grant_revoked kind=GoogleOAuthGrant name=good namespace=" + h.Name + " 0",
		"grantkeeper_grant_client_info client=good-client client_kind=Secret kind=GoogleOAuthGrant name=good namespace=" + h.Name + " 1",
		"grantkeeper_grant_client_info client=shared client_kind=GoogleOAuthClient kind=GoogleOAuthGrant name=shared-user namespace=" + h.Name + " 1",
		// status.clientID, written with each token request's outcome, whether it succeeded.
		"grantkeeper_grant_info account= client_id=" + clientID + " kind=GoogleOAuthGrant name=good namespace=" + h.Name + " 1",
		"grantkeeper_grant_info account= client_id=" + clientID + " kind=GoogleOAuthGrant name=gone namespace=" + h.Name + " 1",
		"grantkeeper_grant_info account= client_id=" + clientID + " kind=GoogleOAuthGrant name=shared-user namespace=" + h.Name + " 1",
		"grantkeeper_access_token_expiration_timestamp_seconds kind=GoogleOAuthGrant name=good namespace=" + h.Name + " " + strconv.FormatInt(g.Status.ExpiresAt.Unix(), 10),
		"grantkeeper_next_refresh_timestamp_seconds kind=GoogleOAuthGrant name=good namespace=" + h.Name + " " + strconv.FormatInt(g.Status.RefreshTime.Unix(), 10),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if d := testutil.ToFloat64(metrics.TokenRequests.WithLabelValues("success")) - successes; d != 2 {
		t.Errorf("success counter grew by %v, want 2", d)
	}
	if d := testutil.ToFloat64(metrics.TokenRequests.WithLabelValues("invalid_grant")) - invalid; d != 1 {
		t.Errorf("invalid_grant counter grew by %v, want 1", d)
	}

	if err := h.C.Delete(h.Ctx, h.GetGrant("gone")); err != nil {
		t.Fatal(err)
	}
	h.Eventually(10*time.Second, "no series for the deleted grant", func() (bool, string) {
		got = series()
		return !strings.Contains(got, "name=gone "), got
	})
}
