package metrics

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/promtext"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// render is the series of a scrape's text, failing the test when it does not parse.
func render(t testing.TB, text string) []string {
	t.Helper()
	lines, err := promtext.Lines(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return lines
}

// grantText is writeGrants' output for the grants, each with clientID as status.clientID.
func grantText(t testing.TB, clientID string, grants ...oauthv1alpha1.GoogleOAuthGrant) string {
	t.Helper()
	for i := range grants {
		grants[i].Status.ClientID = clientID
	}
	all := make([]oauthv1alpha1.Grant, len(grants))
	for i := range grants {
		all[i] = &grants[i]
	}
	var b strings.Builder
	if err := writeGrants(&b, all); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGrantSeries(t *testing.T) {
	at := func(unix int64) *metav1.Time { t := metav1.Unix(unix, 0); return &t }
	for _, c := range []struct {
		name     string
		grant    oauthv1alpha1.GoogleOAuthGrant
		clientID string
		want     []string
	}{{
		name: "new grant: no status yet, client id unknown",
		grant: oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "g"},
			Spec: oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "c"}}},
		want: []string{
			"grantkeeper_grant_client_info client=c client_kind=Secret kind=GoogleOAuthGrant name=g namespace=a 1",
			"grantkeeper_grant_consecutive_failures kind=GoogleOAuthGrant name=g namespace=a 0",
			"grantkeeper_grant_info account= client_id= kind=GoogleOAuthGrant name=g namespace=a 1",
			"grantkeeper_grant_ready kind=GoogleOAuthGrant name=g namespace=a reason=Unknown 0",
			"grantkeeper_grant_revoked kind=GoogleOAuthGrant name=g namespace=a 0",
		},
	}, {
		name: "time-based access, failing: refresh token expiry, account, failures",
		grant: oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "g"},
			Spec: oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "c"}},
			Status: oauthv1alpha1.GrantStatus{
				ExpiresAt: at(1000), RefreshTime: at(900), RefreshTokenExpiresAt: at(90000),
				FailedRefreshAttempts: 3, Account: &oauthv1alpha1.AccountStatus{Email: "ana@example.com", Sub: "42"},
				Conditions: []metav1.Condition{{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "TokenValid"}},
			}},
		clientID: "123-x.apps.googleusercontent.com",
		want: []string{
			"grantkeeper_access_token_expiration_timestamp_seconds kind=GoogleOAuthGrant name=g namespace=a 1000",
			"grantkeeper_grant_client_info client=c client_kind=Secret kind=GoogleOAuthGrant name=g namespace=a 1",
			"grantkeeper_grant_consecutive_failures kind=GoogleOAuthGrant name=g namespace=a 3",
			"grantkeeper_grant_info account=ana@example.com client_id=123-x.apps.googleusercontent.com kind=GoogleOAuthGrant name=g namespace=a 1",
			"grantkeeper_grant_ready kind=GoogleOAuthGrant name=g namespace=a reason=TokenValid 1",
			"grantkeeper_grant_revoked kind=GoogleOAuthGrant name=g namespace=a 0",
			"grantkeeper_next_refresh_timestamp_seconds kind=GoogleOAuthGrant name=g namespace=a 900",
			"grantkeeper_refresh_token_expiration_timestamp_seconds kind=GoogleOAuthGrant name=g namespace=a 90000",
		},
	}, {
		name: "account known without an email (sub only): account stays empty",
		grant: oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "g"},
			Spec: oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "c"}},
			Status: oauthv1alpha1.GrantStatus{Account: &oauthv1alpha1.AccountStatus{Sub: "42"},
				Conditions: []metav1.Condition{
					{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "InvalidGrant"},
					{Type: oauthv1alpha1.ConditionRevoked, Status: metav1.ConditionTrue, Reason: "InvalidGrant"},
				}}},
		clientID: "id",
		want: []string{
			"grantkeeper_grant_client_info client=c client_kind=Secret kind=GoogleOAuthGrant name=g namespace=a 1",
			"grantkeeper_grant_consecutive_failures kind=GoogleOAuthGrant name=g namespace=a 0",
			"grantkeeper_grant_info account= client_id=id kind=GoogleOAuthGrant name=g namespace=a 1",
			"grantkeeper_grant_ready kind=GoogleOAuthGrant name=g namespace=a reason=InvalidGrant 0",
			"grantkeeper_grant_revoked kind=GoogleOAuthGrant name=g namespace=a 1",
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, grantText(t, c.clientID, c.grant))
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestNames(t *testing.T) {
	got := strings.Join(Names(), " ")
	for _, want := range []string{
		"grantkeeper_token_requests_total", "grantkeeper_revoke_requests_total",
		"grantkeeper_token_request_duration_seconds_bucket", "grantkeeper_token_request_duration_seconds_count",
		"grantkeeper_grant_ready", "grantkeeper_grant_info", "grantkeeper_grant_consecutive_failures",
		"grantkeeper_refresh_token_expiration_timestamp_seconds",
	} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("Names() lacks %s: %s", want, got)
		}
	}
	if len(Names()) != 13 {
		t.Errorf("Names() has %d names, want 13 (2 counters, the histogram's 3 series, 8 per-grant series): %s", len(Names()), got)
	}
}

// TestGrantSeriesOfManyGrants: each family's lines stay together whatever the grants' states
// (the parser refuses a family named twice), and a family no grant has is left out.
func TestGrantSeriesOfManyGrants(t *testing.T) {
	exp := metav1.Unix(1000, 0)
	grants := []oauthv1alpha1.GoogleOAuthGrant{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "new"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "fresh"}, Status: oauthv1alpha1.GrantStatus{ExpiresAt: &exp}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "new"}},
	}
	text := grantText(t, "", grants...)
	got := render(t, text)
	if len(got) != 5*3+1 {
		t.Errorf("%d series, want 16 (5 for each grant, one expiry):\n%s", len(got), strings.Join(got, "\n"))
	}
	if strings.Contains(text, "grantkeeper_next_refresh_timestamp_seconds") {
		t.Errorf("a family no grant has is written:\n%s", text)
	}
	if n := strings.Count(text, "# TYPE grantkeeper_grant_ready gauge"); n != 1 {
		t.Errorf("grantkeeper_grant_ready has %d TYPE lines, want 1", n)
	}
}

// TestHostileLabelValues: a client id (from a user's Secret) or an account email with the
// format's special characters or invalid UTF-8 cannot break the scrape or forge a series.
func TestHostileLabelValues(t *testing.T) {
	for _, v := range []string{
		`id"} 1` + "\n" + `grantkeeper_grant_revoked{name="x",namespace="y"} 1`,
		`back\slash\`,
		"line\nbreak",
		"bad\xff\xfeutf8",
		"",
	} {
		g := oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "g"},
			Status: oauthv1alpha1.GrantStatus{Account: &oauthv1alpha1.AccountStatus{Email: v}}}
		p := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := p.TextToMetricFamilies(strings.NewReader(grantText(t, v, g)))
		if err != nil {
			t.Fatalf("value %q: the scrape does not parse: %v", v, err)
		}
		if n := len(mfs["grantkeeper_grant_revoked"].GetMetric()); n != 1 {
			t.Errorf("value %q: %d grantkeeper_grant_revoked series, want 1 (a forged line got through)", v, n)
		}
		want := string([]rune(v)) // each invalid byte a U+FFFD
		for _, l := range mfs["grantkeeper_grant_info"].GetMetric()[0].GetLabel() {
			if (l.GetName() == "client_id" || l.GetName() == "account") && l.GetValue() != want {
				t.Errorf("value %q: label %s reads back as %q, want %q", v, l.GetName(), l.GetValue(), want)
			}
		}
	}
}

// failingReader is a cache that cannot list (not synced, or shutting down).
type failingReader struct{ client.Reader }

func (failingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("cache not started")
}

// TestHandler: the endpoint as Prometheus sees it, grants read from a real API server: the
// registry's families and every grant's in one parseable text body, gzip when asked for,
// 500 and no series when the grants cannot be read, other paths left to the next handler.
func TestHandler(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "handler-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "reports"},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{Scopes: []string{"https://www.googleapis.com/auth/analytics.readonly"},
			ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: "client"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "token"}}}
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(TokenRequests)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(Handler(next, reg, &GrantSeries{Cache: env.Client}))
	defer srv.Close()
	get := func(path, encoding string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		// Go's transport would ask for gzip and decompress unseen; this test looks itself.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	want := []string{
		"grantkeeper_grant_ready kind=GoogleOAuthGrant name=reports namespace=" + ns.Name + " reason=Unknown 0",
		"grantkeeper_token_requests_total result=success 0",
	}
	for encoding, gzipped := range map[string]bool{"": false, "gzip": true, "gzip;q=0": false, "br, gzip;q=0.5": true} {
		resp, body := get(Path, encoding)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Fatalf("Accept-Encoding %q: %d %q, want 200 and the text format", encoding, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if gz := resp.Header.Get("Content-Encoding") == "gzip"; gz != gzipped {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", encoding, resp.Header.Get("Content-Encoding"))
		}
		got := strings.Join(render(t, body), "\n")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("Accept-Encoding %q: no %q in:\n%s", encoding, w, got)
			}
		}
	}
	if resp, _ := get("/other", ""); resp.StatusCode != http.StatusTeapot {
		t.Errorf("another path answered %d, want the next handler's 418", resp.StatusCode)
	}

	broken := httptest.NewServer(Handler(next, reg, &GrantSeries{Cache: failingReader{}}))
	defer broken.Close()
	resp, err := http.Get(broken.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "grantkeeper_") {
		t.Errorf("grants not readable: %d %q, want 500 and no series", resp.StatusCode, body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip": true, "gzip;q=0": false,
		"gzip; q=0.000": false, "gzip;q=0.5": true, "br": false, "x-gzip": false, "*": false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

// BenchmarkWriteGrants: one scrape's per-grant series at 10,000 grants. Built as client_golang
// const metrics they were ~40 MB of heap per scrape (docs/benchmarks.md); written as text,
// what is allocated is the line buffer.
func BenchmarkWriteGrants(b *testing.B) {
	exp := metav1.Unix(1764554000, 0)
	grants := make([]oauthv1alpha1.GoogleOAuthGrant, 10000)
	for i := range grants {
		grants[i] = oauthv1alpha1.GoogleOAuthGrant{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "grant-" + strconv.Itoa(i)},
			Spec:       oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "client"}},
			Status: oauthv1alpha1.GrantStatus{ExpiresAt: &exp, RefreshTime: &exp, ClientID: "123-x.apps.googleusercontent.com",
				Account:    &oauthv1alpha1.AccountStatus{Email: "ana@example.com"},
				Conditions: []metav1.Condition{{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "TokenValid"}}},
		}
	}
	all := make([]oauthv1alpha1.Grant, len(grants))
	for i := range grants {
		all[i] = &grants[i]
	}
	var n countingWriter
	b.ReportAllocs()
	for b.Loop() {
		if err := writeGrants(&n, all); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/float64(b.N), "bytes-written/op")
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// An OAuthGrant's series carry its kind and its client object's kind, so a GoogleOAuthGrant
// of the same name stays a separate series.
func TestOAuthGrantSeries(t *testing.T) {
	g := &oauthv1alpha1.OAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "g"},
		Spec: oauthv1alpha1.OAuthGrantSpec{ClientRef: oauthv1alpha1.OAuthClientReference{Kind: oauthv1alpha1.KindClusterOAuthClient, Name: "org"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "rt"}}}
	gg := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "g"},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "c"}}}
	var b strings.Builder
	if err := writeGrants(&b, []oauthv1alpha1.Grant{gg, g}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(render(t, b.String()), "\n")
	for _, want := range []string{
		"grantkeeper_grant_client_info client=org client_kind=ClusterOAuthClient kind=OAuthGrant name=g namespace=a 1",
		"grantkeeper_grant_ready kind=OAuthGrant name=g namespace=a reason=Unknown 0",
		"grantkeeper_grant_ready kind=GoogleOAuthGrant name=g namespace=a reason=Unknown 0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("series lack %q:\n%s", want, got)
		}
	}
}
