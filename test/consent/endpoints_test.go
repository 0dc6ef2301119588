package consent_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/grantharness"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
)

// shippedRules reads the rules of the role named name in a config/ file.
func shippedRules(t *testing.T, file, name string) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if r.Name == name {
			return r.Rules
		}
	}
	t.Fatalf("%s has no role %s", file, name)
	return nil
}

// TestEndpointsIdentityIsEnough (issue 28 item 6): the consent server and the security-event
// receiver, run as --components=endpoints does (no Secret cache, the key read by name), with
// a client whose RBAC is exactly the shipped endpoints roles (config/endpoints, impersonating
// their ServiceAccount), serve a consent end to end and apply a security event, while the
// manager (another identity) mints the link with the same key; and that identity cannot list
// or watch Secrets nor read webhook configurations.
func TestEndpointsIdentityIsEnough(t *testing.T) {
	g := fakegoogle.New()
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	g.AddClient(clientID, clientSecret)
	ns := grantns.New(t, env.Client, "ep")
	sys := grantns.New(t, env.Client, "ep-sys") // the install namespace
	ctx := ns.Ctx

	// The shipped RBAC, for a ServiceAccount of this test's own.
	sa := "endpoints-" + ns.Name
	user := "system:serviceaccount:" + sys.Name + ":" + sa
	create := func(o client.Object) {
		t.Helper()
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: shippedRules(t, "config/endpoints/role.yaml", "endpoints-role")})
	create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sa},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: sys.Name}}})
	create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "endpoints-key-role", Namespace: sys.Name}, Rules: shippedRules(t, "config/endpoints/rbac.yaml", "endpoints-key-role")})
	create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "endpoints-key-rolebinding", Namespace: sys.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "endpoints-key-role"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: sys.Name}}})
	// Shipped empty (config/endpoints/key.yaml); the manager fills it.
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: consent.KeySecretName, Namespace: sys.Name}, Type: corev1.SecretTypeOpaque})

	epCfg := rest.CopyConfig(env.Config)
	epCfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + sys.Name, "system:authenticated"}}
	epCfg.QPS, epCfg.Burst = 50, 100
	live, err := client.New(epCfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// What the identity may not do.
	if err := live.List(ctx, &corev1.SecretList{}, client.InNamespace(ns.Name)); !apierrors.IsForbidden(err) {
		t.Fatalf("listing Secrets as the endpoints: %v, want Forbidden", err)
	}
	if err := live.List(ctx, &corev1.SecretList{}, client.InNamespace(ns.Name), &client.ListOptions{Raw: &metav1.ListOptions{Watch: true}}); !apierrors.IsForbidden(err) {
		t.Errorf("watching Secrets as the endpoints: %v, want Forbidden", err)
	}
	if err := live.List(ctx, &admissionregistrationv1.MutatingWebhookConfigurationList{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing webhook configurations as the endpoints: %v, want Forbidden", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	g.RegisterRedirectURI(clientID, base+"/callback")
	logs := &grantns.SyncBuffer{}
	logger := zap.New(zap.WriteTo(logs))
	tokens := &tokenclient.Endpoint{TokenURL: g.TokenURL(), RevokeURL: g.RevokeURL(), HTTP: tokenclient.NewHTTPClient(5 * time.Second)}

	// The manager (--components=manager): the controller mints links signed with the key it
	// writes into the shipped Secret.
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Logger: logger, Cache: controllers.CacheOptions(ns.Name),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	links := &consent.Links{Store: consent.Store{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient()}, BaseURL: base, TTL: time.Hour,
		Keys: &consent.SecretKey{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Namespace: sys.Name, Name: consent.KeySecretName}}
	if _, err := controllers.Setup(mgr, controllers.Config{Options: controllers.Options{MaxConcurrentReconciles: 2, SkipNameValidation: true},
		Recorder: mgr.GetEventRecorder("grantkeeper"), Tokens: tokens, Clock: clock.RealClock{},
		Backoff: schedule.Backoff{Base: time.Second, Max: 4 * time.Second}, ManagerNamespace: sys.Name, Consent: links}); err != nil {
		t.Fatal(err)
	}

	// The endpoints (--components=endpoints): a cache of grants and client objects only,
	// Secrets read by name, everything as the endpoints' ServiceAccount.
	emgr, err := ctrl.NewManager(epCfg, ctrl.Options{Scheme: env.Scheme, Logger: logger,
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{ns.Name: {}}, DefaultTransform: cache.TransformStripManagedFields()},
		Client:  client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	srv := &consent.Server{Reader: live, Client: live, Cache: emgr.GetClient(), Recorder: emgr.GetEventRecorder("grantkeeper-consent"),
		Tokens: tokens, AuthURL: g.AuthURL(), ManagerNamespace: sys.Name, Clock: clock.RealClock{}, Log: logger.WithName("consent"),
		Links: &consent.Links{Store: consent.Store{Reader: live, Writer: live}, BaseURL: base, TTL: time.Hour,
			Keys: &consent.SecretKey{Reader: live, Namespace: sys.Name, Name: consent.KeySecretName}}}
	sink := &controllers.SecurityEvents{Client: emgr.GetClient(), APIReader: live, Recorder: emgr.GetEventRecorder("grantkeeper"),
		Index: controllers.NewTokenIndex(), Clock: clock.RealClock{}, NamespacesOnly: true}
	if err := sink.SetupWithManager(emgr); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	go func() { done <- mgr.Start(runCtx) }()
	go func() { done <- emgr.Start(runCtx) }()
	go func() { done <- srv.Serve(runCtx, l) }()
	t.Cleanup(func() {
		cancel()
		for range 3 {
			if err := <-done; err != nil {
				t.Errorf("manager, endpoints or consent server: %v", err)
			}
		}
	})

	h := &harness{World: &grantharness.World{NS: ns, Env: env, Google: g, Logs: logs}, google: g, base: base, replica: base,
		http: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	h.grant("ep", []string{analytics})
	link := h.waitLink("ep", "")
	// A forged link is turned away.
	if resp := h.get(base + consent.LinkPath(ns.Name, "ep", consent.NewKey().LinkToken(ns.Name, "ep", "x", consent.NewID(), time.Now().Add(time.Hour)))); resp.status != http.StatusNotFound {
		t.Errorf("a link signed with another key: HTTP %d, want 404", resp.status)
	}
	f := h.consentOverHTTP(link)
	if !strings.Contains(f.page.body, "Access granted") {
		t.Fatalf("the consent through the endpoints' identity: HTTP %d %s\nlogs:\n%s", f.page.status, f.page.body, logs.String())
	}
	h.waitEvent("ep", "ConsentGranted") // recorded as the endpoints
	gr := h.waitCondition("ep", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	if gr.Status.Account == nil || gr.Status.Account.Sub == "" {
		t.Fatalf("no account in the grant's status: %+v", gr.Status.Account)
	}

	// A security event naming the grant's refresh token, applied by the receiver's sink as
	// the endpoints: its index is empty (no reconciler in this process), so it reads the
	// grants' Secrets by name (fill), then withdraws the derived Secret's token.
	rt := string(h.refreshTokenSecret("ep").Data[oauthv1alpha1.DefaultRefreshTokenKey])
	if rt == "" {
		t.Fatal("no refresh token stored")
	}
	ev := risc.Event{Type: risc.TokenRevoked, Audience: []string{clientID},
		Subject: risc.Subject{Type: "oauth_token", TokenType: "refresh_token", TokenAlg: risc.AlgPrefix, Token: rt[:risc.PrefixLen]}}
	if res, err := sink.Apply(ctx, ev, time.Now()); err != nil || res != risc.ResultApplied {
		t.Fatalf("applying token-revoked as the endpoints: %q %v", res, err)
	}
	h.waitCondition("ep", oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, oauthv1alpha1.ReasonTokenRevokedByGoogle)
}
