package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/egress"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/grantharness"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

const (
	clientID     = "123456789012-test.apps.googleusercontent.com"
	clientSecret = "GOCSPX-4b7Qz1x9TfXc2LkP0vJdW8"
	analytics    = "https://www.googleapis.com/auth/analytics.readonly"
)

// harness is one test's world: its own namespace, fake Google and manager
// (grantharness.World, shared with test/consent and test/risc), and this suite's helpers.
type harness struct {
	*grantharness.World // the test's namespace: Get, GetGrant, GetSecret, Eventually
	google              *fakegoogle.Server
	logs                *grantns.SyncBuffer
	stop                func()
	// cached is the running manager's (cached) client.
	cached client.Client
	// liveReads counts the running manager's reads from the API server.
	liveReads *liveReads
	// decided records, per grant, when the newest decision about it began (any manager).
	decided decisions
}

// recordUserSecret keeps a Secret's data for the leak check.
func (h *harness) recordUserSecret(data map[string][]byte) { h.RecordSecretValues(data) }

// decisions is what the reconcilers' Decided hooks report.
type decisions struct {
	mu     sync.Mutex
	latest map[string]time.Time
	count  map[string]int
}

func (d *decisions) record(name string, began time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.latest == nil {
		d.latest, d.count = map[string]time.Time{}, map[string]int{}
	}
	if began.After(d.latest[name]) {
		d.latest[name] = began
	}
	d.count[name]++
}

// after reports whether a decision about the grant began after t.
func (d *decisions) after(name string, t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.latest[name].After(t)
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	w := grantharness.New(t, env, grantharness.Options{Prefix: "t", ClientID: clientID, ClientSecret: clientSecret})
	h := &harness{World: w, google: w.Google, logs: w.Logs}
	h.startManager()
	t.Cleanup(func() {
		h.stopManager()
		h.CheckNoLeaks(grantharness.Leaks{})
	})
	return h
}

// startManager runs a manager for the test's namespace, logging (at debug level) to h.logs.
func (h *harness) startManager() {
	h.T.Helper()
	m := h.newManager(managerOptions{})
	h.cached, h.stop, h.liveReads = m.cached, m.stop, m.liveReads
}

// managerOptions vary a test manager.
type managerOptions struct {
	// leaderElection runs the manager with a short Lease in the test namespace; the lease is
	// not released on stop, as when a leader process is killed.
	leaderElection bool
}

// runningManager is a started manager.
type runningManager struct {
	cached   client.Client
	stop     func()
	requests *atomic.Int64 // token requests this manager made
	// liveReads counts the reads this manager made from the API server, by object name.
	liveReads *liveReads
	// firstDecision is when this manager's first decision about any grant began.
	mu            sync.Mutex
	firstDecision time.Time
}

func (m *runningManager) decidedAt() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.firstDecision
}

// liveReads is the reconciler's API reader, counting the reads of each object by name.
type liveReads struct {
	client.Reader
	mu sync.Mutex
	n  map[string]int
}

func (l *liveReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	l.mu.Lock()
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.n[key.Name]++
	l.mu.Unlock()
	return l.Reader.Get(ctx, key, obj, opts...)
}

func (l *liveReads) of(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[name]
}

// countingEndpoint counts the token requests one manager makes.
type countingEndpoint struct {
	controllers.TokenEndpoint
	n *atomic.Int64
}

func (c countingEndpoint) Refresh(ctx context.Context, cl credentials.Client, rt string, scopes []string, now time.Time) (*tokenclient.Token, error) {
	c.n.Add(1)
	return c.TokenEndpoint.Refresh(ctx, cl, rt, scopes, now)
}

func (h *harness) newManager(o managerOptions) *runningManager {
	h.T.Helper()
	m := &runningManager{requests: &atomic.Int64{}, liveReads: &liveReads{}}
	decided := func(g types.NamespacedName, began time.Time) {
		if g.Namespace != h.Name {
			return
		}
		h.decided.record(g.Name, began)
		m.mu.Lock()
		if m.firstDecision.IsZero() {
			m.firstDecision = began
		}
		m.mu.Unlock()
	}
	started := h.StartManager(grantharness.ManagerOptions{
		LogLevel: zapcore.DebugLevel, LeaderElection: o.leaderElection,
		Config: controllers.Config{
			Options:           controllers.Options{MaxConcurrentReconciles: 2},
			Tokens:            countingEndpoint{n: m.requests, TokenEndpoint: h.TokenEndpoint(2 * time.Second)},
			Backoff:           schedule.Backoff{Base: time.Second, Max: 4 * time.Second},
			MaxRevokeAttempts: 3,
			Decided:           decided,
			// OAuthGrants' providers here are fake servers on loopback.
			Egress: egress.Policy{AllowLoopback: true}, ProviderTimeout: 2 * time.Second,
		},
		Configure: func(mgr ctrl.Manager, cfg *controllers.Config) {
			m.liveReads.Reader = mgr.GetAPIReader()
			cfg.APIReader = m.liveReads
		},
	})
	m.cached, m.stop = started.GetClient(), started.Stop
	return m
}

func (h *harness) stopManager() {
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// secret creates a Secret in the test namespace.
func (h *harness) secret(name string, data map[string]string) *corev1.Secret {
	h.T.Helper()
	return h.Secret(name, data)
}

// allowWriteBack annotates a user's Secret so that grant may write rotated tokens into it.
func (h *harness) allowWriteBack(secret, grant string) {
	h.T.Helper()
	s := h.GetSecret(secret)
	s.Annotations = map[string]string{oauthv1alpha1.RefreshTokenForAnnotation: grant}
	if err := h.C.Update(h.Ctx, s); err != nil {
		h.T.Fatal(err)
	}
}

// setSecretData replaces a Secret's data.
func (h *harness) setSecretData(name string, data map[string]string) {
	h.T.Helper()
	s := &corev1.Secret{}
	h.Get(name, s)
	h.recordUserSecret(bytesData(data))
	s.Data = nil
	s.StringData = data
	if err := h.C.Update(h.Ctx, s); err != nil {
		h.T.Fatal(err)
	}
}

// credentials creates the client Secret and a refresh-token Secret for a new refresh token.
func (h *harness) credentials(prefix string, scopes ...string) (refreshToken string) {
	h.T.Helper()
	if len(scopes) == 0 {
		scopes = []string{analytics}
	}
	rt := h.google.NewRefreshToken(clientID, scopes...)
	h.secret(prefix+"-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.secret(prefix+"-refresh-token", map[string]string{"refresh_token": rt + "\n"})
	return rt
}

func (h *harness) grant(name string, mutate ...func(*oauthv1alpha1.GoogleOAuthGrantSpec)) *oauthv1alpha1.GoogleOAuthGrant {
	h.T.Helper()
	g := &oauthv1alpha1.GoogleOAuthGrant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
			ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: name + "-client"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-refresh-token"},
		},
	}
	for _, m := range mutate {
		m(&g.Spec)
	}
	if err := h.C.Create(h.Ctx, g); err != nil {
		h.T.Fatal(err)
	}
	return g
}

// waitCondition waits until the grant has condition typ with status and reason.
func (h *harness) waitCondition(name, typ string, status metav1.ConditionStatus, reason string) *oauthv1alpha1.GoogleOAuthGrant {
	h.T.Helper()
	var g *oauthv1alpha1.GoogleOAuthGrant
	h.Eventually(30*time.Second, fmt.Sprintf("%s %s=%s/%s", name, typ, status, reason), func() (bool, string) {
		g = h.GetGrant(name)
		c := meta.FindStatusCondition(g.Status.Conditions, typ)
		if c == nil {
			return false, fmt.Sprintf("no %s condition (conditions %v)", typ, g.Status.Conditions)
		}
		return c.Status == status && c.Reason == reason && c.ObservedGeneration == g.Generation, fmt.Sprintf("%s=%s/%s: %s", typ, c.Status, c.Reason, c.Message)
	})
	return g
}

func (h *harness) waitReady(name string) *oauthv1alpha1.GoogleOAuthGrant {
	h.T.Helper()
	return h.waitCondition(name, oauthv1alpha1.ConditionReady, metav1.ConditionTrue, oauthv1alpha1.ReasonTokenValid)
}

// derived returns the grant's access-token Secret.
func (h *harness) derived(name string) *corev1.Secret {
	h.T.Helper()
	s := &corev1.Secret{}
	h.Get(name, s)
	return s
}

// events lists the events about a grant, as "Type/Reason: note".
func (h *harness) events(grant string) []string {
	h.T.Helper()
	var list eventsv1.EventList
	if err := h.C.List(h.Ctx, &list, client.InNamespace(h.Name)); err != nil {
		h.T.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == grant {
			out = append(out, e.Type+"/"+e.Reason+": "+e.Note)
		}
	}
	return out
}

func (h *harness) waitEvent(grant, typeReason string) {
	h.T.Helper()
	h.Eventually(20*time.Second, "event "+typeReason, func() (bool, string) {
		evs := h.events(grant)
		for _, e := range evs {
			if strings.HasPrefix(e, typeReason+":") {
				return true, ""
			}
		}
		return false, strings.Join(evs, " | ")
	})
}

// waitDecidedAfter waits until a manager has finished a decision about the grant that
// began after t (not a requeue that only waited for a cache): everything that decision
// did (token requests, writes) has happened when this returns.
func (h *harness) waitDecidedAfter(name string, t time.Time) {
	h.T.Helper()
	h.Eventually(20*time.Second, fmt.Sprintf("a decision about %s begun after %s", name, t.Format(time.RFC3339Nano)), func() (bool, string) {
		return h.decided.after(name, t), ""
	})
}

// poke makes the controller reconcile the grant (an unrelated annotation change) and waits
// until it has decided about it again, so a test can then assert what it did not do.
func (h *harness) poke(name string) {
	h.T.Helper()
	// Before the change: the reconcile it triggers can begin before the call returns.
	before := time.Now()
	h.annotate(name, "test/poke", rand.String(6))
	h.waitDecidedAfter(name, before)
}

// annotate sets one annotation with a merge patch, which cannot conflict with the
// controller's concurrent status writes.
func (h *harness) annotate(name, key, value string) {
	h.T.Helper()
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name}}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err := h.C.Patch(h.Ctx, g, client.RawPatch(types.MergePatchType, patch)); err != nil {
		h.T.Fatal(err)
	}
}

// requestRefresh sets the manual-refresh annotation to now, with nanoseconds: two requests
// never share a stamp, so a test never depends on the second turning (or not).
func (h *harness) requestRefresh(name string) string {
	h.T.Helper()
	v := time.Now().UTC().Format(time.RFC3339Nano)
	h.annotate(name, oauthv1alpha1.RefreshRequestedAtAnnotation, v)
	return v
}

func bytesData(data map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(data))
	for k, v := range data {
		out[k] = []byte(v)
	}
	return out
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
