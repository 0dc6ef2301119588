package provider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers/provider"
	"github.com/grantkeeper/grantkeeper/internal/egress"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
	"github.com/grantkeeper/grantkeeper/test/framework/hydra"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// startManager runs the client controllers for namespace ns (and the cluster kind), with
// Secrets of the manager's namespace mgrNS.
func startManager(t *testing.T, ns, mgrNS string, interval time.Duration) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := provider.SetupWithManager(mgr, provider.ClientReconciler{Clock: clock.RealClock{}, ManagerNamespace: mgrNS, DiscoveryInterval: interval, Egress: egress.Policy{AllowLoopback: true}},
		provider.Options{SkipNameValidation: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitReady polls obj until its Ready condition has status and reason for its generation.
func waitReady(n *grantns.NS, obj client.Object, status *oauthv1alpha1.OAuthClientStatus, want metav1.ConditionStatus, reason string) *metav1.Condition {
	n.T.Helper()
	var got *metav1.Condition
	n.Eventually(20*time.Second, fmt.Sprintf("%s Ready=%s %s", obj.GetName(), want, reason), func() (bool, string) {
		if err := n.C.Get(n.Ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		got = meta.FindStatusCondition(status.Conditions, oauthv1alpha1.ConditionReady)
		if got == nil {
			return false, "no Ready condition"
		}
		return got.Status == want && got.Reason == reason && status.ObservedGeneration == obj.GetGeneration(), fmt.Sprintf("%s %s: %s", got.Status, got.Reason, got.Message)
	})
	return got
}

func secret(n *grantns.NS, ns, name string, data map[string]string) {
	n.T.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	if err := n.C.Create(n.Ctx, s); err != nil {
		n.T.Fatal(err)
	}
}

// TestOAuthClientsAgainstHydra: clients of a real provider report Ready with the endpoints
// its metadata names, and each thing a user can get wrong with its reason.
func TestOAuthClientsAgainstHydra(t *testing.T) {
	h := hydra.New(t, hydra.Options{})
	n := grantns.New(t, env.Client, "oac")
	mgrNS := grantns.New(t, env.Client, "mgr")
	startManager(t, n.Name, mgrNS.Name, time.Hour)
	before := time.Now().Add(-time.Second)

	// A client whose Secret does not exist yet: SecretNotFound, then Ready once created.
	c := &oauthv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: n.Name, Name: "hydra"}, Spec: oauthv1alpha1.OAuthClientSpec{
		OAuthProvider:   oauthv1alpha1.OAuthProvider{IssuerURL: h.Issuer, ClientID: "app-1"},
		ClientSecretRef: &oauthv1alpha1.OAuthClientSecretReference{Name: "app-1"}}}
	if err := n.C.Create(n.Ctx, c); err != nil {
		t.Fatal(err)
	}
	cond := waitReady(n, c, &c.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretNotFound)
	if !strings.Contains(cond.Message, `Secret "app-1"`) || !strings.Contains(cond.Message, "spec.clientSecretRef") {
		t.Errorf("SecretNotFound message %q does not name the Secret and the field", cond.Message)
	}
	secret(n, n.Name, "app-1", map[string]string{"other": "x"})
	waitReady(n, c, &c.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretKeyMissing)
	const clientSecret = "app-1-client-secret-value"
	s := &corev1.Secret{}
	n.Get("app-1", s)
	s.Data = map[string][]byte{"client_secret": []byte(clientSecret + "\n")}
	if err := n.C.Update(n.Ctx, s); err != nil {
		t.Fatal(err)
	}
	cond = waitReady(n, c, &c.Status, metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid)
	want := oauthv1alpha1.OAuthEndpointsStatus{AuthorizationURL: h.AuthURL(), TokenURL: h.TokenURL(), RevocationURL: h.RevokeURL()}
	if c.Status.Endpoints == nil || *c.Status.Endpoints != want || c.Status.ClientID != "app-1" {
		t.Errorf("status endpoints %+v, client id %q; want %+v, app-1", c.Status.Endpoints, c.Status.ClientID, want)
	}
	if c.Status.DiscoveryURL != h.Issuer+"/.well-known/openid-configuration" || c.Status.LastDiscoveryTime == nil || c.Status.LastDiscoveryTime.Time.Before(before) {
		t.Errorf("discovery URL %q, last read %v", c.Status.DiscoveryURL, c.Status.LastDiscoveryTime)
	}
	if strings.Contains(cond.Message, clientSecret) {
		t.Fatalf("the Ready message holds the client secret: %s", cond.Message)
	}

	// An explicit endpoint wins over the discovered one.
	c.Spec.Endpoints = &oauthv1alpha1.OAuthEndpoints{RevocationURL: "https://revoke.example.com/r"}
	if err := n.C.Update(n.Ctx, c); err != nil {
		t.Fatal(err)
	}
	waitReady(n, c, &c.Status, metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid)
	if c.Status.Endpoints.RevocationURL != "https://revoke.example.com/r" || c.Status.Endpoints.TokenURL != h.TokenURL() {
		t.Errorf("endpoints %+v: want the explicit revocation URL and the discovered token URL", c.Status.Endpoints)
	}

	// private_key_jwt: a key that cannot sign is InvalidPrivateKey; a good one is Ready.
	jwtc := &oauthv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: n.Name, Name: "jwt"}, Spec: oauthv1alpha1.OAuthClientSpec{
		OAuthProvider:       oauthv1alpha1.OAuthProvider{IssuerURL: h.Issuer, ClientID: "jwt", TokenEndpointAuthMethod: oauthv1alpha1.AuthPrivateKeyJWT},
		PrivateKeySecretRef: &oauthv1alpha1.PrivateKeySecretReference{Name: "jwt-key", KeyID: "k1"}}}
	secret(n, n.Name, "jwt-key", map[string]string{"private_key.pem": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWdhcmJhZ2U=\n-----END PRIVATE KEY-----\n"})
	if err := n.C.Create(n.Ctx, jwtc); err != nil {
		t.Fatal(err)
	}
	cond = waitReady(n, jwtc, &jwtc.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidPrivateKey)
	if !strings.Contains(cond.Message, `key "private_key.pem" of Secret "jwt-key"`) {
		t.Errorf("InvalidPrivateKey message %q does not name the key and Secret", cond.Message)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	s = &corev1.Secret{}
	n.Get("jwt-key", s)
	s.Data = map[string][]byte{"private_key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
	if err := n.C.Update(n.Ctx, s); err != nil {
		t.Fatal(err)
	}
	waitReady(n, jwtc, &jwtc.Status, metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid)

	// A public client needs no Secret.
	pub := &oauthv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: n.Name, Name: "public"}, Spec: oauthv1alpha1.OAuthClientSpec{
		OAuthProvider: oauthv1alpha1.OAuthProvider{IssuerURL: h.Issuer, ClientID: "cli", TokenEndpointAuthMethod: oauthv1alpha1.AuthNone}}}
	if err := n.C.Create(n.Ctx, pub); err != nil {
		t.Fatal(err)
	}
	waitReady(n, pub, &pub.Status, metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid)

	// A cluster client reads its Secret in the manager's namespace by default.
	cc := &oauthv1alpha1.ClusterOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "hydra-" + n.Name}, Spec: oauthv1alpha1.ClusterOAuthClientSpec{
		OAuthProvider:   oauthv1alpha1.OAuthProvider{IssuerURL: h.Issuer, ClientID: "shared", TokenEndpointAuthMethod: oauthv1alpha1.AuthClientSecretPost},
		ClientSecretRef: &oauthv1alpha1.ClusterOAuthClientSecretReference{OAuthClientSecretReference: oauthv1alpha1.OAuthClientSecretReference{Name: "shared", Key: "secret"}}}}
	if err := n.C.Create(n.Ctx, cc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), cc) })
	cond = waitReady(n, cc, &cc.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretNotFound)
	if !strings.Contains(cond.Message, mgrNS.Name) {
		t.Errorf("message %q does not name the manager's namespace %s", cond.Message, mgrNS.Name)
	}
	secret(n, mgrNS.Name, "shared", map[string]string{"secret": "s"})
	waitReady(n, cc, &cc.Status, metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid)
	if cc.Status.Endpoints == nil || cc.Status.Endpoints.TokenURL != h.TokenURL() {
		t.Errorf("cluster client endpoints %+v", cc.Status.Endpoints)
	}

	// An issuer that is not Hydra's (the same server under another name) is refused.
	bad := &oauthv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: n.Name, Name: "alias"}, Spec: oauthv1alpha1.OAuthClientSpec{
		OAuthProvider: oauthv1alpha1.OAuthProvider{IssuerURL: strings.Replace(h.Issuer, "127.0.0.1", "localhost", 1), ClientID: "cli", TokenEndpointAuthMethod: oauthv1alpha1.AuthNone}}}
	if err := n.C.Create(n.Ctx, bad); err != nil {
		t.Fatal(err)
	}
	cond = waitReady(n, bad, &bad.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonDiscoveryFailed)
	if !strings.Contains(cond.Message, "is the metadata of issuer") || bad.Status.Endpoints != nil {
		t.Errorf("DiscoveryFailed message %q, endpoints %+v", cond.Message, bad.Status.Endpoints)
	}
}

// TestDiscoveryFaults: a provider whose metadata becomes unavailable keeps its clients on
// the endpoints last read; one that never served any reports DiscoveryFailed and recovers.
func TestDiscoveryFaults(t *testing.T) {
	var down atomic.Bool
	var requests atomic.Int32
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/.well-known/oauth-authorization-server" {
			fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q,"authorization_endpoint":%q}`, issuer, issuer+"/token", issuer+"/authorize")
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	issuer = srv.URL
	n := grantns.New(t, env.Client, "oacf")
	startManager(t, n.Name, n.Name, 2*time.Second)

	down.Store(true)
	c := &oauthv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: n.Name, Name: "flaky"}, Spec: oauthv1alpha1.OAuthClientSpec{
		OAuthProvider: oauthv1alpha1.OAuthProvider{IssuerURL: issuer, ClientID: "cli", TokenEndpointAuthMethod: oauthv1alpha1.AuthNone}}}
	if err := n.C.Create(n.Ctx, c); err != nil {
		t.Fatal(err)
	}
	cond := waitReady(n, c, &c.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonDiscoveryFailed)
	if !strings.Contains(cond.Message, "HTTP 503") || !strings.Contains(cond.Message, "retrying") {
		t.Errorf("DiscoveryFailed message %q: want the 503 and that it is retried", cond.Message)
	}
	down.Store(false)
	waitReady(n, c, &c.Status, metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid)
	first := c.Status.LastDiscoveryTime
	if c.Status.Endpoints == nil || c.Status.Endpoints.TokenURL != issuer+"/token" || c.Status.Endpoints.RevocationURL != "" {
		t.Fatalf("endpoints %+v", c.Status.Endpoints)
	}
	if !strings.Contains(meta.FindStatusCondition(c.Status.Conditions, oauthv1alpha1.ConditionReady).Message, "no revocation endpoint") {
		t.Errorf("the Ready message does not say that Revoke will be refused")
	}

	// The metadata is read again after the interval; while it fails, the endpoints last
	// read stay in use and the client stays Ready.
	down.Store(true)
	n.Eventually(20*time.Second, "a failed re-read reported on a Ready client", func() (bool, string) {
		if err := n.C.Get(n.Ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return false, err.Error()
		}
		r := meta.FindStatusCondition(c.Status.Conditions, oauthv1alpha1.ConditionReady)
		return r.Status == metav1.ConditionTrue && strings.Contains(r.Message, "Re-reading the issuer's metadata failed"), r.Message
	})
	if c.Status.Endpoints == nil || c.Status.Endpoints.TokenURL != issuer+"/token" || !c.Status.LastDiscoveryTime.Equal(first) {
		t.Errorf("after a failed re-read: endpoints %+v, last read %v (was %v)", c.Status.Endpoints, c.Status.LastDiscoveryTime, first)
	}
	// Bounded: retries back off rather than hammer the provider.
	r0 := requests.Load()
	deadline := time.Now().Add(3 * time.Second)
	n.Eventually(10*time.Second, "3 s to pass", func() (bool, string) { return time.Now().After(deadline), "" })
	if d := requests.Load() - r0; d > 6 {
		t.Errorf("%d metadata requests in 3 s while the provider answered 503", d)
	}
}
