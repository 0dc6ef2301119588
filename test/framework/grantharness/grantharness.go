// Package grantharness is one test's world for the tests that run the manager (controllers,
// test/consent, test/risc): a namespace of its own on the shared envtest API server, a fake
// Google, managers running exactly the controllers cmd/manager runs (controllers.Setup), and
// at the end a check that no secret the test saw leaked into the logs, events or statuses.
// Each suite adds its own helpers on top (consent flows, security events...).
package grantharness

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
	"github.com/grantkeeper/grantkeeper/test/framework/leakcheck"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

// Options of New.
type Options struct {
	// Prefix starts the namespace's name.
	Prefix string
	// ClientID and ClientSecret are registered at the fake Google.
	ClientID, ClientSecret string
}

// World is one test's namespace and fake Google.
type World struct {
	*grantns.NS // Get, GetGrant, GetSecret, Eventually
	Env         *testenv.Env
	Google      *fakegoogle.Server
	// Logs receives every manager's logs.
	Logs *grantns.SyncBuffer

	mu     sync.Mutex
	values []string // secret values the test wrote into Secrets
}

// New starts the fake Google and creates the namespace; both go when the test ends.
func New(t testing.TB, env *testenv.Env, o Options) *World {
	t.Helper()
	w := &World{Env: env, Google: fakegoogle.New(), Logs: &grantns.SyncBuffer{}}
	if err := w.Google.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the managers have stopped.
	t.Cleanup(w.Google.Close)
	if o.ClientID != "" {
		w.Google.AddClient(o.ClientID, o.ClientSecret)
	}
	w.NS = grantns.New(t, env.Client, o.Prefix)
	return w
}

// Secret creates a Secret in the namespace, its values kept for the leak check.
func (w *World) Secret(name string, data map[string]string) *corev1.Secret {
	w.T.Helper()
	w.RecordSecretValues(bytesData(data))
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.Name}, StringData: data}
	if err := w.C.Create(w.Ctx, s); err != nil {
		w.T.Fatal(err)
	}
	return s
}

// RecordSecretValues keeps the values in a Secret's data that must never leak: client
// secrets and refresh tokens, also inside the JSON forms (client_id is not secret). Values
// of a few characters are left out: they occur in any text by chance.
func (w *World) RecordSecretValues(data map[string][]byte) {
	var out []string
	add := func(v string) {
		if v = strings.TrimSpace(v); len(v) >= 6 {
			out = append(out, v)
		}
	}
	for k, v := range data {
		if k == oauthv1alpha1.ClientIDKey {
			continue
		}
		var doc map[string]any
		if json.Unmarshal(v, &doc) != nil {
			add(string(v))
			continue
		}
		for _, obj := range []any{doc, doc["web"], doc["installed"]} {
			if m, ok := obj.(map[string]any); ok {
				for _, field := range []string{"client_secret", "refresh_token", "private_key"} {
					if s, ok := m[field].(string); ok {
						add(s)
					}
				}
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.values = append(w.values, out...)
}

// SecretValues are the values RecordSecretValues kept.
func (w *World) SecretValues() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.values...)
}

func bytesData(data map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(data))
	for k, v := range data {
		out[k] = []byte(v)
	}
	return out
}

// ManagerOptions vary a test manager.
type ManagerOptions struct {
	// Config is controllers.Setup's; Tokens defaults to the fake Google's endpoints (2 s
	// timeout), Recorder to the manager's, ManagerNamespace to the world's namespace, and
	// SkipNameValidation is always set (several managers run in one process).
	Config controllers.Config
	// Configure, when set, completes Config with what needs the manager (consent links
	// on its clients) before Setup.
	Configure func(mgr ctrl.Manager, cfg *controllers.Config)
	// Wire, when set, adds what runs beside the controllers (a receiver, consent servers)
	// after Setup.
	Wire func(mgr ctrl.Manager, r *controllers.GrantReconciler) error
	// Namespaces the manager's cache serves; default the world's.
	Namespaces []string
	// LogLevel of the manager's logs (zap's; default info). Tests that look for debug
	// lines, or check debug output for leaks, set zapcore.DebugLevel.
	LogLevel zapcore.Level
	// LeaderElection runs the manager with a short Lease in the world's namespace; the
	// lease is not released on stop, as when a leader process is killed.
	LeaderElection bool
}

// Manager is a started manager.
type Manager struct {
	ctrl.Manager
	Reconciler *controllers.GrantReconciler
	stop       func()
}

// Stop stops the manager and waits for it (again: nothing).
func (m *Manager) Stop() { m.stop() }

// StartManager runs a manager as cmd/manager wires it, logging to w.Logs; it stops when the
// test ends, if not before.
func (w *World) StartManager(o ManagerOptions) *Manager {
	w.T.Helper()
	logger := zap.New(zap.WriteTo(w.Logs), zap.UseDevMode(true), zap.Level(o.LogLevel))
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{w.Name}
	}
	opts := ctrl.Options{
		Scheme: w.Env.Scheme, Logger: logger, Cache: controllers.CacheOptions(namespaces...),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	}
	if o.LeaderElection {
		lease, renew, retry := 4*time.Second, 3*time.Second, 500*time.Millisecond
		opts.LeaderElection = true
		opts.LeaderElectionID = "grantkeeper-test"
		opts.LeaderElectionNamespace = w.Name
		opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = &lease, &renew, &retry
	}
	mgr, err := ctrl.NewManager(w.Env.Config, opts)
	if err != nil {
		w.T.Fatal(err)
	}
	cfg := o.Config
	cfg.SkipNameValidation = true
	if cfg.Tokens == nil {
		cfg.Tokens = w.TokenEndpoint(2 * time.Second)
	}
	if cfg.Recorder == nil {
		cfg.Recorder = mgr.GetEventRecorder("grantkeeper")
	}
	if cfg.ManagerNamespace == "" {
		cfg.ManagerNamespace = w.Name
	}
	if o.Configure != nil {
		o.Configure(mgr, &cfg)
	}
	r, err := controllers.Setup(mgr, cfg)
	if err != nil {
		w.T.Fatal(err)
	}
	if o.Wire != nil {
		if err := o.Wire(mgr, r); err != nil {
			w.T.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	m := &Manager{Manager: mgr, Reconciler: r}
	m.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				w.T.Errorf("manager: %v", err)
			}
		})
	}
	w.T.Cleanup(m.stop)
	return m
}

// TokenEndpoint is the fake Google's token and revocation endpoints, as the manager calls them.
func (w *World) TokenEndpoint(timeout time.Duration) *tokenclient.Endpoint {
	return &tokenclient.Endpoint{TokenURL: w.Google.TokenURL(), RevokeURL: w.Google.RevokeURL(), HTTP: tokenclient.NewHTTPClient(timeout)}
}

// Leaks are what CheckNoLeaks looks at besides the defaults.
type Leaks struct {
	// Secrets are more values that must not appear (codes, states, token identifiers...).
	Secrets []string
	// Texts are more places to search, by name (pages a server answered...).
	Texts map[string]string
	// LogsMustContain is a line the logs must hold, or the check would prove nothing.
	LogsMustContain string
}

// CheckNoLeaks: no refresh token, access token, client secret or private key (every one the
// fake Google issued or knows, and every value the test wrote into a Secret) in the logs,
// the namespace's events, or the namespace's grants' and client objects' statuses, nor a
// PEM block; plus l's.
func (w *World) CheckNoLeaks(l Leaks) {
	w.T.Helper()
	secrets := append(w.Google.RefreshTokens(), w.Google.IssuedAccessTokens()...)
	secrets = append(secrets, w.Google.ClientSecrets()...)
	secrets = append(secrets, w.Google.PrivateKeys()...)
	secrets = append(secrets, w.SecretValues()...)
	secrets = append(secrets, l.Secrets...)
	// A failed List would leave nothing to search: the check would pass on nothing.
	var grants oauthv1alpha1.GoogleOAuthGrantList
	if err := w.C.List(w.Ctx, &grants, client.InNamespace(w.Name)); err != nil {
		w.T.Fatalf("leak check: listing the grants: %v", err)
	}
	var clients oauthv1alpha1.GoogleOAuthClientList
	if err := w.C.List(w.Ctx, &clients, client.InNamespace(w.Name)); err != nil {
		w.T.Fatalf("leak check: listing the clients: %v", err)
	}
	var clusterClients oauthv1alpha1.ClusterGoogleOAuthClientList
	if err := w.C.List(w.Ctx, &clusterClients); err != nil {
		w.T.Fatalf("leak check: listing the cluster clients: %v", err)
	}
	statusJSON, _ := json.Marshal([]any{grants, clients, clusterClients})
	var evs eventsv1.EventList
	if err := w.C.List(w.Ctx, &evs, client.InNamespace(w.Name)); err != nil {
		w.T.Fatalf("leak check: listing the events: %v", err)
	}
	eventsJSON, _ := json.Marshal(evs)
	logs := w.Logs.String()
	must := l.LogsMustContain
	if must == "" {
		must = "Starting Controller"
	}
	if !strings.Contains(logs, must) {
		w.T.Errorf("the logs lack %q: the leak check would prove nothing", must)
	}
	texts := map[string]string{"logs": logs, "grants and clients": string(statusJSON), "events": string(eventsJSON)}
	for k, v := range l.Texts {
		texts[k] = v
	}
	for where, text := range texts {
		if leakcheck.HasPEMBlock(text) {
			w.T.Errorf("a PEM block (a private key) appears in the %s", where)
		}
		if found := leakcheck.Find(text, secrets); len(found) > 0 {
			w.T.Errorf("tokens or client secrets (whole or a %d-character slice) appear in the %s: %v", leakcheck.SliceLen, where, found)
		}
	}
}
