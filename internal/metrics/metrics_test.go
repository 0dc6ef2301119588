package metrics

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// render writes metrics as "name label=value ... value" lines, sorted.
func render(t *testing.T, ms []prometheus.Metric) []string {
	t.Helper()
	var out []string
	for _, m := range ms {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `fqName: "`)+9:]
		name = name[:strings.Index(name, `"`)]
		line := name
		for _, l := range pb.GetLabel() {
			line += " " + l.GetName() + "=" + l.GetValue()
		}
		out = append(out, line+" "+strconv.FormatFloat(pb.GetGauge().GetValue(), 'f', -1, 64))
	}
	sort.Strings(out)
	return out
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
			"grantkeeper_grant_client_info client=c client_kind=Secret name=g namespace=a 1",
			"grantkeeper_grant_consecutive_failures name=g namespace=a 0",
			"grantkeeper_grant_info account= client_id= name=g namespace=a 1",
			"grantkeeper_grant_ready name=g namespace=a reason=Unknown 0",
			"grantkeeper_grant_revoked name=g namespace=a 0",
		},
	}, {
		name: "time-based access, failing: refresh token expiry, account, failures",
		grant: oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "g"},
			Spec: oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "c"}},
			Status: oauthv1alpha1.GoogleOAuthGrantStatus{
				ExpiresAt: at(1000), RefreshTime: at(900), RefreshTokenExpiresAt: at(90000),
				FailedRefreshAttempts: 3, Account: &oauthv1alpha1.AccountStatus{Email: "ana@example.com", Sub: "42"},
				Conditions: []metav1.Condition{{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "TokenValid"}},
			}},
		clientID: "123-x.apps.googleusercontent.com",
		want: []string{
			"grantkeeper_access_token_expiration_timestamp_seconds name=g namespace=a 1000",
			"grantkeeper_grant_client_info client=c client_kind=Secret name=g namespace=a 1",
			"grantkeeper_grant_consecutive_failures name=g namespace=a 3",
			"grantkeeper_grant_info account=ana@example.com client_id=123-x.apps.googleusercontent.com name=g namespace=a 1",
			"grantkeeper_grant_ready name=g namespace=a reason=TokenValid 1",
			"grantkeeper_grant_revoked name=g namespace=a 0",
			"grantkeeper_next_refresh_timestamp_seconds name=g namespace=a 900",
			"grantkeeper_refresh_token_expiration_timestamp_seconds name=g namespace=a 90000",
		},
	}, {
		name: "account known without an email (sub only): account stays empty",
		grant: oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "g"},
			Spec: oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "c"}},
			Status: oauthv1alpha1.GoogleOAuthGrantStatus{Account: &oauthv1alpha1.AccountStatus{Sub: "42"},
				Conditions: []metav1.Condition{
					{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "InvalidGrant"},
					{Type: oauthv1alpha1.ConditionRevoked, Status: metav1.ConditionTrue, Reason: "InvalidGrant"},
				}}},
		clientID: "id",
		want: []string{
			"grantkeeper_grant_client_info client=c client_kind=Secret name=g namespace=a 1",
			"grantkeeper_grant_consecutive_failures name=g namespace=a 0",
			"grantkeeper_grant_info account= client_id=id name=g namespace=a 1",
			"grantkeeper_grant_ready name=g namespace=a reason=InvalidGrant 0",
			"grantkeeper_grant_revoked name=g namespace=a 1",
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, grantSeries(&c.grant, c.clientID))
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// countingReader counts live Secret reads.
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets.Add(1)
	return r.Reader.Get(ctx, key, obj, opts...)
}

// TestClientIDs: grant_info's client_id for each way a grant names its client, against a
// real API server; a client Secret is read live once per version, not once per scrape.
func TestClientIDs(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "metrics-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	create := func(o client.Object) {
		t.Helper()
		o.SetNamespace(ns.Name)
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	secret := func(name string, data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}
		create(s)
		return s
	}
	grant := func(name string, spec oauthv1alpha1.GoogleOAuthGrantSpec) *oauthv1alpha1.GoogleOAuthGrant {
		spec.Scopes = []string{"https://www.googleapis.com/auth/analytics.readonly"}
		return &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name}, Spec: spec}
	}
	plain := secret("plain", map[string]string{"client_id": "plain-id", "client_secret": "s1"})
	secret("json", map[string]string{"client_secret.json": `{"web": {"client_id": "json-id", "client_secret": "s2"}}`})
	secret("adc", map[string]string{"credentials.json": `{"type": "authorized_user", "client_id": "adc-id", "client_secret": "s3", "refresh_token": "r"}`})
	secret("broken", map[string]string{"client_id": "half"})
	obj := &oauthv1alpha1.GoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: oauthv1alpha1.GoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClientObjectSecretReference{Name: "json"}}}
	create(obj)
	obj.Status.ClientID = "object-id"
	if err := env.Client.Status().Update(ctx, obj); err != nil {
		t.Fatal(err)
	}

	live := &countingReader{Reader: env.Client}
	r := Readers{Cache: env.Client, SecretMeta: env.Client, Live: live}
	var ids clientIDs
	cases := []struct {
		grant *oauthv1alpha1.GoogleOAuthGrant
		want  string
	}{
		{grant("plain", oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "plain"}}), "plain-id"},
		{grant("json", oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "json"}}), "json-id"},
		{grant("adc", oauthv1alpha1.GoogleOAuthGrantSpec{AuthorizedUserSecretRef: &oauthv1alpha1.AuthorizedUserSecretReference{Name: "adc"}}), "adc-id"},
		{grant("ref", oauthv1alpha1.GoogleOAuthGrantSpec{ClientRef: &oauthv1alpha1.ClientReference{Name: "shared"}}), "object-id"},
		// Bad input: no id rather than a guess; the grant's Ready condition says what is wrong.
		{grant("broken", oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "broken"}}), ""},
		{grant("missing", oauthv1alpha1.GoogleOAuthGrantSpec{ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "nope"}}), ""},
	}
	// A scrape whose time for live reads is up reports no id for Secrets it has not read,
	// and reads nothing; the next scrape does.
	exhausted := map[types.NamespacedName]bool{}
	if got := ids.lookup(ctx, r, cases[0].grant, exhausted, time.Now().Add(-time.Second)); got != "" || live.gets.Load() != 0 {
		t.Errorf("past the live-read budget: client_id %q after %d live reads, want empty after none", got, live.gets.Load())
	}
	scrape := func() map[types.NamespacedName]bool {
		seen := map[types.NamespacedName]bool{}
		for _, c := range cases {
			if got := ids.lookup(ctx, r, c.grant, seen, time.Now().Add(time.Minute)); got != c.want {
				t.Errorf("grant %s: client_id %q, want %q", c.grant.Name, got, c.want)
			}
		}
		ids.forgetExcept(seen)
		return seen
	}
	scrape()
	first := live.gets.Load()
	if first != 4 { // plain, json, adc, broken: "missing" has no metadata, "ref" is a cached object
		t.Errorf("first scrape read %d Secrets live, want 4", first)
	}
	scrape()
	if n := live.gets.Load() - first; n != 0 {
		t.Errorf("a second scrape read %d unchanged Secrets live again, want 0", n)
	}

	// A rotated client: the new version is read, and its id reported.
	plain.StringData = map[string]string{"client_id": "rotated-id", "client_secret": "s4"}
	if err := env.Client.Update(ctx, plain); err != nil {
		t.Fatal(err)
	}
	cases[0].want = "rotated-id"
	before := live.gets.Load()
	scrape()
	if n := live.gets.Load() - before; n != 1 {
		t.Errorf("after the client Secret changed, a scrape read %d Secrets live, want 1", n)
	}

	// A grant that goes away takes its remembered id along.
	cases = cases[1:]
	scrape()
	if _, ok := ids.m[types.NamespacedName{Namespace: ns.Name, Name: "plain"}]; ok {
		t.Error("the id of a Secret no grant names any more is still remembered")
	}

	// Without a metadata watch there is no cheap way to tell a Secret changed: no id.
	seen := map[types.NamespacedName]bool{}
	if got := ids.lookup(ctx, Readers{Cache: env.Client}, cases[0].grant, seen, time.Now().Add(time.Minute)); got != "" {
		t.Errorf("without SecretMeta/Live: client_id %q, want empty", got)
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
