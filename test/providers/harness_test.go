package providers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"golang.org/x/oauth2"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	krand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/egress"
	"github.com/grantkeeper/grantkeeper/internal/oauthtoken"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/test/framework/grantharness"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
	"github.com/grantkeeper/grantkeeper/test/framework/hydra"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

// One control plane and one Hydra for the package: every test has its own namespace,
// manager and Hydra clients, so the tests run in parallel.
var (
	env *testenv.Env
	idp *hydra.Server
	// processLogs is what goes to controller-runtime's global logger (the informers of
	// every manager log there, not to the manager's logger): checked for leaks too.
	processLogs = &grantns.SyncBuffer{}
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(processLogs), zap.UseDevMode(true)))
	// The default access-token lifetime (1h): tests that need short-lived tokens give their
	// Hydra client its own (hydra.ClientSpec.RefreshTokenGrantAccessTokenLifespan).
	s, err := hydra.Start(hydra.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hydra:", err)
		os.Exit(1)
	}
	idp = s
	code := testenv.Run(m, &env)
	if code != 0 {
		// What Hydra said (warnings and errors): a server_error's cause is only there.
		fmt.Fprintf(os.Stderr, "hydra's log:\n%s\n", s.Log())
	}
	s.Stop()
	os.Exit(code)
}

// The redirect URI is never opened: hydra.Authorize stops at the redirect to it.
const redirectURI = "http://127.0.0.1:9/callback"

// Hydra's tokens and codes carry these prefixes: any of them in the logs, events or
// statuses is a leak, also of a token the test never saw (one rotated out between polls).
var hydraTokenPrefixes = []string{"ory_at_", "ory_rt_", "ory_ac_"}

// world is one test's namespace (grantharness.World, with its fake Google unused), a
// manager wired by controllers.Setup that may reach the loopback Hydra, and the tokens
// the test saw, for the leak check at the end.
type world struct {
	*grantharness.World
	subject string // the account that consents in this test's authorizations

	mu      sync.Mutex
	tokens  []string             // access and refresh tokens seen
	decided map[string]time.Time // per grant, when the newest decision began
	stop    func()
}

func newWorld(t *testing.T) *world { return newWorldWith(t, true) }

// newWorldWith: namespacesOnly false lets the manager watch ClusterOAuthClients (one test
// at a time should: every such manager reconciles every cluster client).
func newWorldWith(t *testing.T, namespacesOnly bool) *world {
	t.Helper()
	w := &world{World: grantharness.New(t, env, grantharness.Options{Prefix: "prov"}), decided: map[string]time.Time{}}
	w.subject = w.Name + "@example.com"
	m := w.StartManager(grantharness.ManagerOptions{
		LogLevel: zapcore.DebugLevel, // debug lines are checked for leaks too
		Config: controllers.Config{
			Options: controllers.Options{MaxConcurrentReconciles: 2, NamespacesOnly: namespacesOnly},
			Backoff: schedule.Backoff{Base: time.Second, Max: 4 * time.Second},
			Egress:  egress.Policy{AllowLoopback: true},
			Decided: func(g types.NamespacedName, began time.Time) {
				if g.Namespace != w.Name {
					return
				}
				w.mu.Lock()
				defer w.mu.Unlock()
				if began.After(w.decided[g.Name]) {
					w.decided[g.Name] = began
				}
			},
		},
	})
	w.stop = m.Stop
	t.Cleanup(func() {
		w.stop()
		w.checkNoLeaks()
	})
	return w
}

// see keeps token values for the leak check.
func (w *world) see(tokens ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			w.tokens = append(w.tokens, t)
		}
	}
}

// eventually polls cond until it holds or timeout passes; on failure it logs every
// OAuthGrant's status in the namespace, then fails with what cond last saw.
func (w *world) eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	w.T.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(w.Ctx, 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, seen := cond()
		if seen != "" {
			last = seen
		}
		return ok, nil
	})
	if err == nil {
		return
	}
	var grants oauthv1alpha1.OAuthGrantList
	if w.C.List(w.Ctx, &grants, client.InNamespace(w.Name)) == nil {
		for _, g := range grants.Items {
			js, _ := json.Marshal(g.Status)
			w.T.Logf("OAuthGrant %s status: %s", g.Name, js)
		}
	}
	w.T.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
}

// --- Hydra side ---

// hydraRetry runs a call of the test's own at Hydra again when Hydra failed it for a
// concurrent write: its in-memory SQLite store (DSN=memory) answers concurrent writes from
// the parallel tests' managers with "Unable to serialize access due to a concurrent update"
// (HTTP 400 at the admin API, server_error at the token endpoint, a failed accept in the
// login and consent app). Those are Hydra's store, not what the tests check: the calls the
// manager makes are not retried here.
func hydraRetry[T any](t testing.TB, what string, call func() (T, error)) T {
	t.Helper()
	var err error
	for range 5 {
		var v T
		if v, err = call(); err == nil {
			return v
		}
		msg := err.Error()
		if !strings.Contains(msg, "concurrent update") && !strings.Contains(msg, "server_error") && !strings.Contains(msg, "HTTP 502") && !strings.Contains(msg, "unrecognizable") && !strings.Contains(msg, "has already been used") {
			break
		}
	}
	t.Fatalf("%s: %v", what, err)
	panic("unreachable")
}

// userClient registers a client for the authorization code flow with refresh tokens at
// Hydra (scopes openid, offline_access and extra), authenticating with method; for
// private_key_jwt it also returns the key, as PEM, whose public half Hydra holds.
func (w *world) userClient(method oauthv1alpha1.TokenEndpointAuthMethod, lifespan time.Duration, extra ...string) (hydra.Client, *oauthtoken.SigningKey, []byte) {
	w.T.Helper()
	spec := hydra.ClientSpec{
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		RedirectURIs:            []string{redirectURI},
		Scope:                   strings.Join(append([]string{"openid", "offline_access"}, extra...), " "),
		TokenEndpointAuthMethod: string(method),
	}
	if lifespan > 0 {
		spec.RefreshTokenGrantAccessTokenLifespan = lifespan.String()
	}
	if method != oauthv1alpha1.AuthPrivateKeyJWT {
		return hydraRetry(w.T, "registering the client", func() (hydra.Client, error) { return idp.Admin.CreateClient(w.Ctx, spec) }), nil, nil
	}
	pemKey, key := rsaKey(w.T, "key-"+krand.String(6))
	c := hydraRetry(w.T, "registering the client", func() (hydra.Client, error) {
		return idp.Admin.PrivateKeyJWTClient(w.Ctx, spec, key.Signer, key.KeyID, key.Method.Alg())
	})
	return c, key, pemKey
}

// rsaKey is a new RSA key as PEM (PKCS #8) and as the token client's signing key.
func rsaKey(t testing.TB, kid string) ([]byte, *oauthtoken.SigningKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pemSigner(t, k, kid)
}

// ecKey is a new P-256 key as PEM (PKCS #8) and as the token client's signing key.
func ecKey(t testing.TB, kid string) ([]byte, *oauthtoken.SigningKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pemSigner(t, k, kid)
}

func pemSigner(t testing.TB, k any, kid string) ([]byte, *oauthtoken.SigningKey) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	key, err := oauthtoken.ParsePrivateKey(p, kid)
	if err != nil {
		t.Fatal(err)
	}
	return p, key
}

// consent is a person authorizing client c for scopes at Hydra (the login and consent app
// signs in w.subject), the code exchanged as a consent link's callback would: it returns
// the refresh token.
func (w *world) consent(c hydra.Client, method oauthv1alpha1.TokenEndpointAuthMethod, key *oauthtoken.SigningKey, scopes ...string) string {
	w.T.Helper()
	e := &oauthtoken.Endpoint{TokenURL: idp.TokenURL(), HTTP: tokenclient.NewHTTPClient(10 * time.Second)}
	tok := hydraRetry(w.T, "authorizing and exchanging the code", func() (*oauthtoken.Token, error) {
		verifier := oauth2.GenerateVerifier()
		q, err := idp.Authorize(w.Ctx, hydra.AuthRequest{ClientID: c.ID, RedirectURI: redirectURI, Scopes: scopes,
			State: "st-" + krand.String(16), CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), LoginHint: w.subject})
		if err != nil {
			return nil, err
		}
		if q.Get("code") == "" {
			return nil, fmt.Errorf("the authorization ended without a code: %v", q)
		}
		return e.Exchange(w.Ctx, oauthtoken.Client{ID: c.ID, Secret: c.Secret, Method: method, Key: key}, q.Get("code"), redirectURI, verifier, oauthtoken.Params{}, time.Now())
	})
	w.see(tok.AccessToken, tok.RefreshToken)
	if !strings.HasPrefix(tok.RefreshToken, "ory_rt_") || !strings.HasPrefix(tok.AccessToken, "ory_at_") {
		// The prefix check of checkNoLeaks would prove nothing.
		w.T.Fatalf("Hydra's tokens no longer start with ory_rt_ / ory_at_")
	}
	return tok.RefreshToken
}

// introspect asks Hydra about a token.
func (w *world) introspect(token string) hydra.Introspection {
	w.T.Helper()
	return hydraRetry(w.T, "introspecting", func() (hydra.Introspection, error) { return idp.Admin.Introspect(w.Ctx, token) })
}

// countingProxy forwards to Hydra's public API and counts the token requests through it:
// an OAuthClient whose endpoints.tokenURL names it lets a test count what the manager asks.
type countingProxy struct {
	URL string
	// tokens counts token requests; issued those Hydra answered 200 (a refresh that
	// rotated). Hydra's in-memory store fails some requests that race other tests' writes
	// (server_error), which the grant retries: checks of "one refresh, not two" count issued.
	tokens, issued atomic.Int64
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (w *world) countingProxy() *countingProxy {
	w.T.Helper()
	target, _ := url.Parse(idp.PublicURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &countingProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth2/token" {
			rp.ServeHTTP(rw, r)
			return
		}
		p.tokens.Add(1)
		sw := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
		rp.ServeHTTP(sw, r)
		if sw.status == http.StatusOK {
			p.issued.Add(1)
		}
	}))
	w.T.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// --- Kubernetes side ---

// oauthClient creates an OAuthClient for the Hydra client c (issuerURL Hydra's: endpoints
// discovered), with its Secret: the client secret, or for private_key_jwt the PEM key.
func (w *world) oauthClient(name string, c hydra.Client, method oauthv1alpha1.TokenEndpointAuthMethod, pemKey []byte, kid string, mutate ...func(*oauthv1alpha1.OAuthClientSpec)) *oauthv1alpha1.OAuthClient {
	w.T.Helper()
	oc := &oauthv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: w.Name, Name: name}, Spec: oauthv1alpha1.OAuthClientSpec{
		OAuthProvider: oauthv1alpha1.OAuthProvider{IssuerURL: idp.Issuer, ClientID: c.ID, TokenEndpointAuthMethod: method}}}
	switch method {
	case oauthv1alpha1.AuthPrivateKeyJWT:
		w.Secret(name+"-key", map[string]string{oauthv1alpha1.DefaultPrivateKeyKey: string(pemKey)})
		oc.Spec.PrivateKeySecretRef = &oauthv1alpha1.PrivateKeySecretReference{Name: name + "-key", KeyID: kid}
	case oauthv1alpha1.AuthNone:
	default:
		// A trailing newline, as kubectl create secret --from-file leaves it.
		w.Secret(name+"-secret", map[string]string{"client_secret": c.Secret + "\n"})
		oc.Spec.ClientSecretRef = &oauthv1alpha1.OAuthClientSecretReference{Name: name + "-secret"}
	}
	for _, m := range mutate {
		m(&oc.Spec)
	}
	if err := w.C.Create(w.Ctx, oc); err != nil {
		w.T.Fatal(err)
	}
	return oc
}

// refreshTokenSecret stores a refresh token as a user would: their own Secret, no
// annotation, a trailing newline, and another key that must survive write-backs.
func (w *world) refreshTokenSecret(name, refreshToken string) {
	w.T.Helper()
	w.Secret(name, map[string]string{"refresh_token": refreshToken + "\n", "note": "kept by its owner"})
}

// grant creates an OAuthGrant naming the OAuthClient client; a RefreshToken grant reads
// <name>-refresh-token.
func (w *world) grant(name, client string, scopes []string, mutate ...func(*oauthv1alpha1.OAuthGrantSpec)) *oauthv1alpha1.OAuthGrant {
	w.T.Helper()
	g := &oauthv1alpha1.OAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: w.Name, Name: name}, Spec: oauthv1alpha1.OAuthGrantSpec{
		ClientRef:             oauthv1alpha1.OAuthClientReference{Kind: oauthv1alpha1.KindOAuthClient, Name: client},
		RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-refresh-token"},
		Scopes:                scopes,
	}}
	for _, m := range mutate {
		m(&g.Spec)
	}
	if err := w.C.Create(w.Ctx, g); err != nil {
		w.T.Fatal(err)
	}
	return g
}

// key is the name's key in the test's namespace.
func (w *world) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: w.Name, Name: name}
}

func (w *world) getGrant(name string) *oauthv1alpha1.OAuthGrant {
	w.T.Helper()
	g := &oauthv1alpha1.OAuthGrant{}
	w.Get(name, g)
	return g
}

// cond is "Status/Reason" of the grant's condition typ, "" when absent.
func cond(g *oauthv1alpha1.OAuthGrant, typ string) string {
	c := meta.FindStatusCondition(g.Status.Conditions, typ)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// waitCondition waits until the grant's condition typ is want ("True/TokenValid") for its
// current generation.
func (w *world) waitCondition(name, typ, want string) *oauthv1alpha1.OAuthGrant {
	w.T.Helper()
	var g *oauthv1alpha1.OAuthGrant
	w.eventually(60*time.Second, fmt.Sprintf("OAuthGrant %s %s=%s", name, typ, want), func() (bool, string) {
		g = w.getGrant(name)
		c := meta.FindStatusCondition(g.Status.Conditions, typ)
		if c == nil {
			return false, fmt.Sprintf("no %s condition (conditions %v)", typ, g.Status.Conditions)
		}
		return string(c.Status)+"/"+c.Reason == want && c.ObservedGeneration == g.Generation, fmt.Sprintf("%s=%s/%s: %s", typ, c.Status, c.Reason, c.Message)
	})
	return g
}

func (w *world) waitReady(name string) *oauthv1alpha1.OAuthGrant {
	w.T.Helper()
	return w.waitCondition(name, oauthv1alpha1.ConditionReady, "True/"+oauthv1alpha1.ReasonTokenValid)
}

// message is the message of the grant's condition typ.
func message(g *oauthv1alpha1.OAuthGrant, typ string) string {
	if c := meta.FindStatusCondition(g.Status.Conditions, typ); c != nil {
		return c.Message
	}
	return ""
}

// accessToken reads the grant's derived Secret (<name>-access-token) and checks its shape:
// access_token, token_type Bearer, expiry (RFC 3339) and token.json saying the same, owned
// by the grant. It returns the token and its expiry.
func (w *world) accessToken(grant string) (string, time.Time) {
	w.T.Helper()
	s := w.GetSecret(grant + "-access-token")
	at := string(s.Data[oauthv1alpha1.AccessTokenKey])
	w.see(at)
	if at == "" {
		w.T.Fatalf("Secret %s-access-token has no access_token: keys %v", grant, slices.Sorted(mapsKeys(s.Data)))
	}
	if tt := string(s.Data[oauthv1alpha1.TokenTypeKey]); tt != "Bearer" {
		w.T.Errorf("token_type %q, want Bearer", tt)
	}
	expiry, err := time.Parse(time.RFC3339, string(s.Data[oauthv1alpha1.ExpiryKey]))
	if err != nil {
		w.T.Fatalf("expiry %q: %v", s.Data[oauthv1alpha1.ExpiryKey], err)
	}
	var js struct {
		AccessToken string    `json:"access_token"`
		TokenType   string    `json:"token_type"`
		Expiry      time.Time `json:"expiry"`
	}
	if err := json.Unmarshal(s.Data[oauthv1alpha1.TokenJSONKey], &js); err != nil {
		w.T.Fatalf("token.json: %v", err)
	}
	if js.AccessToken != at || js.TokenType != "Bearer" || !js.Expiry.Equal(expiry) {
		w.T.Errorf("token.json says token %v, type %q, expiry %v; the other keys %v, Bearer, %v", js.AccessToken == at, js.TokenType, js.Expiry, true, expiry)
	}
	if ref := metav1.GetControllerOf(s); ref == nil || ref.Kind != oauthv1alpha1.KindOAuthGrant || ref.Name != grant {
		w.T.Errorf("the derived Secret's controller is %+v, want the OAuthGrant %s (deleting the grant must delete it)", ref, grant)
	}
	return at, expiry
}

func mapsKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// refreshToken reads the refresh token in the grant's Secret (surrounding whitespace
// trimmed), checking that the Secret's other key survived.
func (w *world) refreshToken(secret string) string {
	w.T.Helper()
	s := w.GetSecret(secret)
	rt := strings.TrimSpace(string(s.Data["refresh_token"]))
	w.see(rt)
	if string(s.Data["note"]) != "kept by its owner" {
		w.T.Errorf("Secret %s lost its other key: keys %v", secret, slices.Sorted(mapsKeys(s.Data)))
	}
	return rt
}

// liveAccessToken waits until the grant's derived Secret holds an access token Hydra says
// is active, and returns it with Hydra's answer. A wait, not one read: under load (two
// suites at once, load ~20) Hydra's introspection answered active:false for a client
// credentials token it had just issued, which nothing revokes; RFC 7662 lets a server
// answer inactive on any failure, and Hydra's in-memory store fails reads that race
// writes. (A repeated refresh, which would revoke the token it replaced, would show in
// the tests' exact request counts.)
func (w *world) liveAccessToken(grant string) (string, hydra.Introspection) {
	w.T.Helper()
	var at string
	var in hydra.Introspection
	w.eventually(20*time.Second, "Secret "+grant+"-access-token holding a token active at Hydra", func() (bool, string) {
		at, _ = w.accessToken(grant)
		in = w.introspect(at)
		return in.Active, fmt.Sprintf("%+v", in)
	})
	return at, in
}

// liveRefreshToken is liveAccessToken for the refresh token in a Secret.
func (w *world) liveRefreshToken(secret string) string {
	w.T.Helper()
	var rt string
	w.eventually(20*time.Second, "Secret "+secret+" holding a refresh token active at Hydra", func() (bool, string) {
		rt = w.refreshToken(secret)
		in := w.introspect(rt)
		return in.Active && in.TokenUse == "refresh_token", fmt.Sprintf("%+v", in)
	})
	return rt
}

// annotate sets one annotation on the grant with a merge patch, which cannot conflict
// with the controller's status writes.
func (w *world) annotate(name, key, value string) {
	w.T.Helper()
	g := &oauthv1alpha1.OAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.Name}}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err := w.C.Patch(w.Ctx, g, client.RawPatch(types.MergePatchType, patch)); err != nil {
		w.T.Fatal(err)
	}
}

// requestRefresh is `kubectl grantkeeper refresh`: the manual-refresh annotation, now
// (nanoseconds: two requests never share a stamp).
func (w *world) requestRefresh(name string) string {
	w.T.Helper()
	v := time.Now().UTC().Format(time.RFC3339Nano)
	w.annotate(name, oauthv1alpha1.RefreshRequestedAtAnnotation, v)
	return v
}

// waitHandled waits until the grant's status says the manual request v was acted on.
func (w *world) waitHandled(name, v string) *oauthv1alpha1.OAuthGrant {
	w.T.Helper()
	var g *oauthv1alpha1.OAuthGrant
	w.eventually(30*time.Second, "the manual refresh "+v+" handled", func() (bool, string) {
		g = w.getGrant(name)
		return g.Status.LastHandledRefreshRequest == v, g.Status.LastHandledRefreshRequest
	})
	return g
}

// poke makes the controller reconcile the grant (an unrelated annotation) and waits until
// a decision about it that began after the change has finished: whatever it did (token
// requests, writes) has happened when poke returns.
func (w *world) poke(name string) {
	w.T.Helper()
	before := time.Now()
	w.annotate(name, "test/poke", krand.String(6))
	w.eventually(30*time.Second, "a decision about "+name+" after the poke", func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.decided[name].After(before), ""
	})
}

// events lists the events about an object as "Type/Reason: note".
func (w *world) events(name string) []string {
	w.T.Helper()
	var list eventsv1.EventList
	if err := w.C.List(w.Ctx, &list, client.InNamespace(w.Name)); err != nil {
		w.T.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Type+"/"+e.Reason+": "+e.Note)
		}
	}
	return out
}

func (w *world) waitEvent(name, typeReason string) {
	w.T.Helper()
	w.eventually(30*time.Second, "event "+typeReason+" about "+name, func() (bool, string) {
		evs := w.events(name)
		for _, e := range evs {
			if strings.HasPrefix(e, typeReason+":") {
				return true, ""
			}
		}
		return false, strings.Join(evs, " | ")
	})
}

// checkNoLeaks: no token the test saw (access and refresh, rotated ones too), no client
// secret or private key (grantharness records the Secrets' values), and no Hydra token
// of any kind (by its prefix) in the manager's logs, the namespace's events, or the
// statuses of the OAuthGrants, OAuthClients and ClusterOAuthClients.
func (w *world) checkNoLeaks() {
	w.T.Helper()
	var grants oauthv1alpha1.OAuthGrantList
	if err := w.C.List(w.Ctx, &grants, client.InNamespace(w.Name)); err != nil {
		w.T.Fatalf("leak check: listing the OAuthGrants: %v", err)
	}
	var clients oauthv1alpha1.OAuthClientList
	if err := w.C.List(w.Ctx, &clients, client.InNamespace(w.Name)); err != nil {
		w.T.Fatalf("leak check: listing the OAuthClients: %v", err)
	}
	var clusterClients oauthv1alpha1.ClusterOAuthClientList
	if err := w.C.List(w.Ctx, &clusterClients); err != nil {
		w.T.Fatalf("leak check: listing the ClusterOAuthClients: %v", err)
	}
	var statuses []any
	for _, c := range clusterClients.Items {
		statuses = append(statuses, c.Status)
	}
	for _, g := range grants.Items {
		statuses = append(statuses, g.Status)
	}
	for _, c := range clients.Items {
		statuses = append(statuses, c.Status)
	}
	statusJSON, _ := json.Marshal(statuses)
	var evs eventsv1.EventList
	if err := w.C.List(w.Ctx, &evs, client.InNamespace(w.Name)); err != nil {
		w.T.Fatalf("leak check: listing the events: %v", err)
	}
	eventsJSON, _ := json.Marshal(evs)
	w.mu.Lock()
	tokens := slices.Clone(w.tokens)
	w.mu.Unlock()
	logs := w.Logs.String()
	// The logs must hold the token requests' debug lines (every test makes some), or the
	// check proves nothing.
	w.CheckNoLeaks(grantharness.Leaks{Secrets: tokens, Texts: map[string]string{"OAuthGrant and OAuthClient statuses": string(statusJSON)},
		LogsMustContain: "requesting access token"})
	for where, text := range map[string]string{"logs": logs, "process logs": processLogs.String(), "events": string(eventsJSON), "OAuthGrant and OAuthClient statuses": string(statusJSON)} {
		for _, p := range hydraTokenPrefixes {
			if strings.Contains(text, p) {
				w.T.Errorf("a Hydra token (%s...) appears in the %s", p, where)
			}
		}
	}
}
