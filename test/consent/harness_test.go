// Package consent_test tests consent links end to end: a real API server (envtest), the
// manager's controller and consent server, and the fake Google server; over plain HTTP
// (consent_test.go) and with a real headless Chromium (browser_test.go).
package consent_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/controllers"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/grantharness"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
	"github.com/grantkeeper/grantkeeper/test/framework/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// Libraries that log through the global logger (informers) would otherwise print a
	// warning and a stack; the manager's own logs go to each harness's buffer.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	os.Exit(testenv.Run(m, &env))
}

const (
	clientID     = "123456789012-consent.apps.googleusercontent.com"
	clientSecret = "GOCSPX-9c2Lk7Qz1xTfXP0vJdW8ab"
	analytics    = "https://www.googleapis.com/auth/analytics.readonly"
	drive        = "https://www.googleapis.com/auth/drive.readonly"
)

// harness is one test's world: a namespace, a fake Google, and a manager running the
// controllers (grantharness.World), and the consent servers.
type harness struct {
	*grantharness.World // the test's namespace: Get, GetGrant, GetSecret, Eventually
	google              *fakegoogle.Server
	base                string // the consent server's base URL
	// replica is a second consent server (another replica), reached directly.
	replica string
	http    *http.Client
	// seen keeps every response body and every URL the flow went through, for leak checks.
	seenMu sync.Mutex
	seen   []string
	// secrets are values that must never appear in logs, events or pages (codes, states...).
	secrets []string
	// others are further namespaces the manager serves (harnessOptions.otherNamespaces).
	others []*grantns.NS
}

type harnessOptions struct {
	ttl time.Duration
	// readTimeout is the consent server's read timeout (default 2s in tests).
	readTimeout time.Duration
	// otherNamespaces: how many more namespaces the manager serves besides the harness's
	// own (h.others; the harness's helpers work in one of them inside h.in).
	otherNamespaces int
	// serverNamespaces are the consent servers' Namespaces (the manager's --namespaces).
	serverNamespaces []string
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	w := grantharness.New(t, env, grantharness.Options{Prefix: "c", ClientID: clientID, ClientSecret: clientSecret})
	h := &harness{World: w, google: w.Google}
	served := []string{h.Name}
	for range o.otherNamespaces {
		n := grantns.New(t, env.Client, "c")
		h.others, served = append(h.others, n), append(served, n.Name)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.base = "http://" + l.Addr().String()
	// As on a Web client in the Cloud console: only the consent server's callback.
	h.google.RegisterRedirectURI(clientID, h.base+"/callback")
	h.http = &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	tokens := h.TokenEndpoint(5 * time.Second)
	ttl := o.ttl
	if ttl == 0 {
		ttl = time.Hour
	}
	rt := o.readTimeout
	if rt == 0 {
		rt = 2 * time.Second
	}
	// A second replica's consent server: another process would have its own clients; it
	// shares only the API server (and the external base URL, behind one Service).
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.replica = "http://" + l2.Addr().String()
	var links *consent.Links
	m := h.StartManager(grantharness.ManagerOptions{
		Namespaces: served, LogLevel: zapcore.DebugLevel,
		Config: controllers.Config{
			Options: controllers.Options{MaxConcurrentReconciles: 2},
			Tokens:  tokens, Backoff: schedule.Backoff{Base: time.Second, Max: 4 * time.Second},
		},
		Configure: func(mgr ctrl.Manager, cfg *controllers.Config) {
			links = &consent.Links{Store: consent.Store{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient()}, BaseURL: h.base, TTL: ttl}
			cfg.Consent = links
		},
		Wire: func(mgr ctrl.Manager, _ *controllers.GrantReconciler) error {
			srv := &consent.Server{
				Reader: mgr.GetAPIReader(), Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("grantkeeper-consent"),
				Tokens: tokens, AuthURL: h.google.AuthURL(), Links: links, ManagerNamespace: h.Name, Namespaces: o.serverNamespaces,
				Clock: clock.RealClock{}, Log: mgr.GetLogger().WithName("consent"), ReadTimeout: rt, WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second,
			}
			srv2 := *srv
			srv2.Reader, srv2.Client = env.Client, env.Client
			srv2.Links = &consent.Links{Store: consent.Store{Reader: env.Client, Writer: env.Client}, BaseURL: h.base, TTL: ttl}
			for _, run := range []manager.RunnableFunc{
				func(ctx context.Context) error { return srv.Serve(ctx, l) },
				func(ctx context.Context) error { return srv2.Serve(ctx, l2) },
			} {
				if err := mgr.Add(run); err != nil {
					return err
				}
			}
			return nil
		},
	})
	t.Cleanup(func() {
		m.Stop()
		h.checkNoLeaks()
	})
	return h
}

// in runs fn with the harness's helpers (grant, waitCondition, waitLink, consentOverHTTP...)
// working in namespace n instead of the harness's own. Not for concurrent use.
func (h *harness) in(n *grantns.NS, fn func()) {
	own := h.NS
	h.NS = n
	defer func() { h.NS = own }()
	fn()
}

// clientSecretObj creates the grant's OAuth client Secret.
func (h *harness) clientSecretObj(name string) {
	h.T.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name},
		StringData: map[string]string{"client_id": clientID, "client_secret": clientSecret}}
	if err := h.C.Create(h.Ctx, s); err != nil {
		h.T.Fatal(err)
	}
}

// grant creates a grant with a client Secret and scopes; its refresh-token Secret is
// <name>-refresh-token (created by nobody: consent does).
func (h *harness) grant(name string, scopes []string, mutate ...func(*oauthv1alpha1.GoogleOAuthGrantSpec)) *oauthv1alpha1.GoogleOAuthGrant {
	h.T.Helper()
	h.clientSecretObj(name + "-client")
	g := &oauthv1alpha1.GoogleOAuthGrant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
			ClientSecretRef:       &oauthv1alpha1.ClientSecretReference{Name: name + "-client"},
			RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: name + "-refresh-token"},
			Scopes:                scopes,
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

// waitCondition waits for a condition of the grant to have status and reason.
func (h *harness) waitCondition(name, typ string, status metav1.ConditionStatus, reason string) *oauthv1alpha1.GoogleOAuthGrant {
	h.T.Helper()
	var g *oauthv1alpha1.GoogleOAuthGrant
	h.Eventually(20*time.Second, name+" "+typ+"="+string(status)+"/"+reason, func() (bool, string) {
		g = h.GetGrant(name)
		c := meta.FindStatusCondition(g.Status.Conditions, typ)
		if c == nil {
			return false, "no condition"
		}
		return c.Status == status && (reason == "" || c.Reason == reason), string(c.Status) + "/" + c.Reason + ": " + c.Message
	})
	return g
}

// waitLink waits for the grant to offer a link (status.consent Required, the link in its link
// Secret; other than not, when set) and returns it.
func (h *harness) waitLink(name, not string) string {
	h.T.Helper()
	var link string
	h.Eventually(20*time.Second, name+" has a consent link", func() (bool, string) {
		g := h.GetGrant(name)
		link = h.linkInSecret(name)
		return g.Status.Consent == oauthv1alpha1.ConsentRequired && link != "" && link != not, string(g.Status.Consent) + " " + link
	})
	if !strings.HasPrefix(link, h.base+"/c/") {
		h.T.Fatalf("consent URL %q does not start with the base URL %q", link, h.base)
	}
	return link
}

// linkInSecret is the link kept in the grant's link Secret ("" when none).
func (h *harness) linkInSecret(name string) string {
	h.T.Helper()
	rec := h.record(name)
	if rec == nil {
		return ""
	}
	return rec.URL
}

// response is one answer, read whole.
type response struct {
	status   int
	header   http.Header
	body     string
	location string
}

// get fetches u without following redirects; every response is checked for the security
// headers (consent server only) and kept for the leak check.
func (h *harness) get(u string, header ...string) response {
	h.T.Helper()
	req, err := http.NewRequestWithContext(h.Ctx, http.MethodGet, u, nil)
	if err != nil {
		h.T.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.T.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: string(body), location: resp.Header.Get("Location")}
	if strings.HasPrefix(u, h.base) || strings.HasPrefix(u, h.replica) {
		h.checkHeaders(u, resp.Header)
		h.seenMu.Lock()
		h.seen = append(h.seen, r.body)
		h.seenMu.Unlock()
	}
	return r
}

// recordPage keeps a page a browser showed, and the code and state in its URL, for the leak check.
func (h *harness) recordPage(page, pageURL string) {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	h.seen = append(h.seen, page)
	if u, err := url.Parse(pageURL); err == nil {
		for _, k := range []string{"code", "state"} {
			if v := u.Query().Get(k); v != "" {
				h.secrets = append(h.secrets, v)
			}
		}
	}
}

// checkHeaders: the contract's headers on every consent-server response.
func (h *harness) checkHeaders(u string, hd http.Header) {
	h.T.Helper()
	want := map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
	for k, v := range want {
		if hd.Get(k) != v {
			h.T.Errorf("%s: header %s = %q, want %q", redact(u), k, hd.Get(k), v)
		}
	}
	if csp := hd.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
		h.T.Errorf("%s: Content-Security-Policy %q is not restrictive", redact(u), csp)
	}
}

// redact keeps a URL's path only, for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	return p.Path
}

// flow is what one consent went through.
type flow struct {
	authURL *url.URL   // where the link redirected
	code    string     // the code Google returned
	state   string     // the state
	back    string     // the callback URL
	page    response   // the outcome page
	open    response   // the link's answer
	google  response   // Google's answer
	extra   url.Values // Google's redirect query
}

// consentOverHTTP opens link, lets the fake Google decide without a browser, follows the
// callback, and returns every step.
func (h *harness) consentOverHTTP(link string) flow {
	h.T.Helper()
	var f flow
	f.open = h.get(link)
	if f.open.status != http.StatusSeeOther {
		h.T.Fatalf("opening the link: HTTP %d, want 303: %s", f.open.status, f.open.body)
	}
	u, err := url.Parse(f.open.location)
	if err != nil || !strings.HasPrefix(f.open.location, h.google.AuthURL()+"?") {
		h.T.Fatalf("the link redirected to %q, not to the auth URL", f.open.location)
	}
	f.authURL = u
	f.state = u.Query().Get("state")
	h.secrets = append(h.secrets, f.state)
	if rec := h.record(linkGrant(link)); rec != nil && rec.Attempt != nil {
		h.secrets = append(h.secrets, rec.Attempt.Verifier)
	}
	f.google = h.get(f.open.location)
	if f.google.status != http.StatusFound || !strings.HasPrefix(f.google.location, h.base+"/callback?") {
		h.T.Fatalf("Google answered HTTP %d to %q", f.google.status, f.google.location)
	}
	f.back = f.google.location
	bu, _ := url.Parse(f.back)
	f.extra = bu.Query()
	f.code = f.extra.Get("code")
	if f.code != "" {
		h.secrets = append(h.secrets, f.code)
	}
	f.page = h.get(f.back)
	return f
}

// record is a grant's link record as stored (nil when absent).
func (h *harness) record(name string) *consent.Record {
	h.T.Helper()
	_, rec, err := (&consent.Store{Reader: h.C, Writer: h.C}).Load(h.Ctx, h.Name, name)
	if err != nil {
		h.T.Fatal(err)
	}
	return rec
}

// linkGrant is the grant name in a consent URL.
func linkGrant(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	_, name, _, _ := consent.ParseLinkPath(u.Path)
	return name
}

// refreshTokenSecret returns the grant's refresh-token Secret, nil when absent.
func (h *harness) refreshTokenSecret(name string) *corev1.Secret {
	h.T.Helper()
	s := &corev1.Secret{}
	err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: h.Name, Name: name + "-refresh-token"}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		h.T.Fatal(err)
	}
	return s
}

// events lists the events' reasons and notes on a grant.
func (h *harness) events(name string) []eventsv1.Event {
	h.T.Helper()
	var l eventsv1.EventList
	if err := h.C.List(h.Ctx, &l, client.InNamespace(h.Name)); err != nil {
		h.T.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range l.Items {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an event with reason on the grant.
func (h *harness) waitEvent(name, reason string) eventsv1.Event {
	h.T.Helper()
	var found eventsv1.Event
	h.Eventually(10*time.Second, "event "+reason+" on "+name, func() (bool, string) {
		var reasons []string
		for _, e := range h.events(name) {
			reasons = append(reasons, e.Reason)
			if e.Reason == reason {
				found = e
				return true, ""
			}
		}
		return false, strings.Join(reasons, ",")
	})
	return found
}

// checkNoLeaks looks for every secret the test saw (tokens the fake issued, the client
// secret, codes, states, PKCE verifiers) in the manager's logs, the namespace's events and
// every page the consent server answered.
func (h *harness) checkNoLeaks() {
	h.T.Helper()
	// Every flow's verifier and code, the browser's included (they are not read from the
	// records or the redirects).
	secrets := append(h.google.CodeVerifiers(), h.google.IssuedCodes()...)
	h.seenMu.Lock()
	secrets = append(secrets, h.secrets...)
	pages := strings.Join(h.seen, "\n")
	h.seenMu.Unlock()
	h.CheckNoLeaks(grantharness.Leaks{Secrets: secrets, Texts: map[string]string{"pages": pages}, LogsMustContain: "serving consent links"})
}
