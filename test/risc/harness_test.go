package risc_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/grantharness"
	"github.com/grantkeeper/grantkeeper/test/framework/risctransmitter"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

const (
	clientID     = "123456789012-risc.apps.googleusercontent.com"
	clientSecret = "GOCSPX-9c1Rz7x2TfXc2LkP0vJdQ4"
	analytics    = "https://www.googleapis.com/auth/analytics.readonly"
)

// harness: a namespace, fake Google and a manager (grantharness.World), a fake
// transmitter, and the manager's receiver.
type harness struct {
	*grantharness.World // the test's namespace: Get, GetGrant, GetSecret, Eventually
	google              *fakegoogle.Server
	tx                  *risctransmitter.Transmitter
	url                 string
	cache               client.Reader // the running manager's cache, which the receiver reads
	stop                func()
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	w := grantharness.New(t, env, grantharness.Options{Prefix: "r", ClientID: clientID, ClientSecret: clientSecret})
	h := &harness{World: w, google: w.Google}
	tx, err := risctransmitter.New()
	if err != nil {
		t.Fatal(err)
	}
	h.tx = tx
	h.startManager()
	t.Cleanup(func() {
		h.stopManager()
		h.checkNoLeaks()
		h.tx.Close()
	})
	return h
}

// startManager runs a manager (logging at the default, info, level) whose receiver is at h.url.
func (h *harness) startManager() {
	h.T.Helper()
	m := h.StartManager(grantharness.ManagerOptions{
		Config: controllers.Config{
			Options: controllers.Options{MaxConcurrentReconciles: 4, NamespacesOnly: true},
			Backoff: schedule.Backoff{Base: time.Second, Max: 4 * time.Second}, MaxRevokeAttempts: 3,
			TokenIndex: controllers.NewTokenIndex(),
		},
		Wire: func(mgr ctrl.Manager, r *controllers.GrantReconciler) error {
			h.cache = mgr.GetClient()
			sink := &controllers.SecurityEvents{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("grantkeeper"), Index: r.TokenIndex, Clock: clock.RealClock{}, NamespacesOnly: true}
			if err := sink.SetupWithManager(mgr); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			h.url = "http://" + ln.Addr().String() + risc.Path
			handler := &risc.Handler{Verifier: &risc.Verifier{ConfigurationURL: h.tx.ConfigurationURL(), RefetchFloor: 100 * time.Millisecond}, Sink: sink, Log: mgr.GetLogger().WithName("risc")}
			return controllers.AddReceiverListener(mgr, ln, handler)
		},
	})
	h.stop = m.Stop
}

func (h *harness) stopManager() {
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

func (h *harness) secret(name string, data map[string]string) {
	h.T.Helper()
	h.Secret(name, data)
}

// grant creates a grant with its own client Secret and a new refresh token with scopes; when
// account is set, the token belongs to it. It returns the refresh token.
func (h *harness) grant(name string, account *fakegoogle.Account, scopes ...string) string {
	h.T.Helper()
	rt := h.google.NewRefreshToken(clientID, append([]string{analytics}, scopes...)...)
	if account != nil {
		h.google.SetAccount(rt, *account)
	}
	h.secret(name+"-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.secret(name+"-refresh-token", map[string]string{"refresh_token": rt})
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: name + "-client"},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-refresh-token"},
	}}
	if err := h.C.Create(h.Ctx, g); err != nil {
		h.T.Fatal(err)
	}
	return rt
}

// condition is "Status/Reason" of the grant's condition typ ("" when absent).
func condition(g *oauthv1alpha1.GoogleOAuthGrant, typ string) string {
	c := meta.FindStatusCondition(g.Status.Conditions, typ)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

func (h *harness) waitCondition(name, typ, want string) *oauthv1alpha1.GoogleOAuthGrant {
	h.T.Helper()
	var g *oauthv1alpha1.GoogleOAuthGrant
	h.Eventually(30*time.Second, fmt.Sprintf("%s %s=%s", name, typ, want), func() (bool, string) {
		g = h.GetGrant(name)
		got := condition(g, typ)
		return got == want, got
	})
	return g
}

func (h *harness) waitReady(name string) *oauthv1alpha1.GoogleOAuthGrant {
	h.T.Helper()
	return h.waitCondition(name, oauthv1alpha1.ConditionReady, "True/TokenValid")
}

// waitAccount waits until the grant's status.account.sub is known to the receiver: it
// matches an account's events to grants in the manager's cache (indexed by sub), which can
// lag the API server, so waiting on the API server alone lets a first delivery match nothing.
func (h *harness) waitAccount(name string) {
	h.T.Helper()
	h.Eventually(30*time.Second, name+" status.account in the receiver's cache", func() (bool, string) {
		var g oauthv1alpha1.GoogleOAuthGrant
		if err := h.cache.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: name}, &g); err != nil {
			return false, err.Error()
		}
		a := g.Status.Account
		return a != nil && a.Sub != "", fmt.Sprint(a)
	})
}

// events lists the events about a grant as "Type/Reason", once per occurrence: Kubernetes
// folds a repeated Event into a series on one Event object, and an Event with a series of
// n stands for n occurrences here.
func (h *harness) events(grant string) []string {
	h.T.Helper()
	var list eventsv1.EventList
	if err := h.C.List(h.Ctx, &list, client.InNamespace(h.Name)); err != nil {
		h.T.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name != grant {
			continue
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		for range n {
			out = append(out, e.Type+"/"+e.Reason)
		}
	}
	return out
}

// countEvents counts the occurrences of an event about a grant (a series counts its count).
func (h *harness) countEvents(grant, typeReason string) int {
	n := 0
	for _, e := range h.events(grant) {
		if e == typeReason {
			n++
		}
	}
	return n
}

// received is the receiver's grantkeeper_security_events_total for an event type (its
// ShortName) and result: the one record of how often an event was applied, as Events
// about a grant fold repeats into a series.
func received(eventType, result string) float64 {
	return testutil.ToFloat64(risc.SecurityEvents.WithLabelValues(risc.ShortName(eventType), result))
}

// send signs events for our client and posts them; it fails the test unless the answer is want.
func (h *harness) send(want int, o risctransmitter.Options, evs ...risctransmitter.Event) {
	h.T.Helper()
	if o.Audience == "" {
		o.Audience = clientID
	}
	h.post(want, h.tx.Sign(o, evs...))
}

func (h *harness) post(want int, raw string) {
	h.T.Helper()
	code, err := h.tx.Post(h.url, raw)
	if err != nil {
		h.T.Fatal(err)
	}
	if code != want {
		h.T.Fatalf("receiver answered %d, want %d", code, want)
	}
}

// snapshot is what must not change: every grant's and Secret's resourceVersion.
func (h *harness) snapshot() map[string]string {
	h.T.Helper()
	out := map[string]string{}
	var grants oauthv1alpha1.GoogleOAuthGrantList
	if err := h.C.List(h.Ctx, &grants, client.InNamespace(h.Name)); err != nil {
		h.T.Fatal(err)
	}
	for _, g := range grants.Items {
		out["grant/"+g.Name] = g.ResourceVersion
	}
	var secrets corev1.SecretList
	if err := h.C.List(h.Ctx, &secrets, client.InNamespace(h.Name)); err != nil {
		h.T.Fatal(err)
	}
	for _, s := range secrets.Items {
		out["secret/"+s.Name] = s.ResourceVersion
	}
	return out
}

// checkNoLeaks: no refresh token, access token, client secret or token identifier (a
// prefix is a slice of the token: leakcheck finds it) in the logs, events or statuses; and no
// account email in the logs (they run at the default level).
func (h *harness) checkNoLeaks() {
	h.T.Helper()
	var ids []string
	for _, rt := range h.google.RefreshTokens() {
		ids = append(ids, risc.HashIdentifier(rt))
	}
	h.CheckNoLeaks(grantharness.Leaks{Secrets: ids, LogsMustContain: "security-event receiver listening"})
	var grants oauthv1alpha1.GoogleOAuthGrantList
	if err := h.C.List(h.Ctx, &grants, client.InNamespace(h.Name)); err != nil {
		h.T.Fatalf("leak check: listing the grants: %v", err)
	}
	if len(grants.Items) == 0 {
		h.T.Error("leak check: no grants listed: it would prove nothing")
	}
	logs := h.Logs.String()
	for _, g := range grants.Items {
		if a := g.Status.Account; a != nil && a.Email != "" && strings.Contains(logs, a.Email) {
			h.T.Errorf("the account email of grant %s appears in the default-level logs", g.Name)
		}
	}
}

// annotate sets one annotation with a merge patch.
func (h *harness) annotate(name, key, value string) {
	h.T.Helper()
	g := h.GetGrant(name)
	before := g.DeepCopy()
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[key] = value
	if err := h.C.Patch(h.Ctx, g, client.MergeFrom(before)); err != nil {
		h.T.Fatal(err)
	}
}
