package consent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/idtoken"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/internal/writable"
)

// Exchanger trades an authorization code for tokens (tokenclient.Endpoint).
type Exchanger interface {
	Exchange(ctx context.Context, c credentials.Client, code, redirectURI, verifier string, now time.Time) (*tokenclient.Token, error)
}

// Server serves consent links and the OAuth callback. Every replica runs one: all state is
// in the API server. Links and states are signed (Key): a request whose link or state is not
// grantkeeper's is answered from the grant cache alone; a signed one reads the link record
// live right before the preconditioned write that uses it. It needs no Secret cache, so its
// identity needs no list or watch on Secrets (issue 28 item 6).
type Server struct {
	// Addr is --consent-bind-address.
	Addr string
	// Reader reads live from the API server; Client writes.
	Reader client.Reader
	// Cache, when set, answers requests from outside: the grant is read from it, so a forged
	// link or state costs no API request (issue 28).
	Cache client.Reader
	// Limit, when set, wraps every handler but /healthz (internal/httplimit).
	Limit  func(http.Handler) http.Handler
	Client client.Client
	// Recorder records the Consent* events on grants.
	Recorder events.EventRecorder
	Tokens   Exchanger
	// AuthURL is --auth-url, the only place the server redirects to.
	AuthURL string
	Links   *Links
	// ManagerNamespace is where a ClusterGoogleOAuthClient's Secret is by default.
	ManagerNamespace string
	// Namespaces are the manager's --namespaces: links of grants elsewhere do not exist
	// (empty: every namespace).
	Namespaces []string
	Clock      clock.PassiveClock
	Log        logr.Logger
	// Timeouts (defaults when zero): reading a request, writing a response, idle keep-alive.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// Limits of what a request may bring.
const (
	maxHeaderBytes = 8 << 10
	maxURILength   = 4 << 10
	maxCodeLength  = 2 << 10
)

// Headers sent with every response.
var securityHeaders = map[string]string{
	"Cache-Control":           "no-store",
	"Pragma":                  "no-cache",
	"Referrer-Policy":         "no-referrer",
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Content-Security-Policy": ContentSecurityPolicy,
}

// RedirectURI is the OAuth redirect URI to register on the Web client: <base>/callback.
func (s *Server) RedirectURI() string { return strings.TrimSuffix(s.Links.BaseURL, "/") + "/callback" }

// Handler is the consent server's HTTP handler.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		switch {
		case len(r.RequestURI) > maxURILength:
			s.page(w, Page{Kind: PageBadState})
			return
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 0)
		switch {
		case r.URL.Path == "/callback":
			s.callback(w, r)
		case r.URL.Path == "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok\n"))
		case strings.HasPrefix(r.URL.Path, "/c/"):
			s.open(w, r)
		default:
			s.page(w, Page{Kind: PageUnknown})
		}
	})
}

// limited is Handler behind Limit (health checks excepted: the kubelet's probes must not
// fail because of a flood).
func (s *Server) limited() http.Handler {
	h := s.Handler()
	if s.Limit == nil {
		return h
	}
	lh := s.Limit(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		lh.ServeHTTP(w, r)
	})
}

// Start serves until ctx ends (a controller-runtime Runnable).
func (s *Server) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("consent server: %w", err)
	}
	return s.Serve(ctx, l)
}

// Serve serves on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.limited(),
		ReadHeaderTimeout: or(s.ReadTimeout, 10*time.Second),
		ReadTimeout:       or(s.ReadTimeout, 10*time.Second),
		WriteTimeout:      or(s.WriteTimeout, 30*time.Second),
		IdleTimeout:       or(s.IdleTimeout, 60*time.Second),
		MaxHeaderBytes:    maxHeaderBytes,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	s.Log.Info("serving consent links", "address", l.Addr().String(), "redirectURI", s.RedirectURI())
	err := hs.Serve(l)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// NeedLeaderElection: every replica serves links.
func (s *Server) NeedLeaderElection() bool { return false }

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (s *Server) page(w http.ResponseWriter, p Page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.Status())
	_, _ = w.Write(Render(p))
}

// grant reads a grant (from Cache when set); nil when it does not exist.
func (s *Server) grant(ctx context.Context, namespace, name string) (*oauthv1alpha1.GoogleOAuthGrant, error) {
	g := &oauthv1alpha1.GoogleOAuthGrant{}
	r := s.Reader
	if s.Cache != nil {
		r = s.Cache
	}
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, g); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return g, nil
}

// key is the key links and states are signed with (Links.Keys).
func (s *Server) key(ctx context.Context) (Key, error) { return s.Links.KeySource().Key(ctx) }

// cachedGrant reads the grant for a request (from Cache), answering it (absent grant: the
// page of kind missing; a read failure: errorPage) when it cannot go on.
func (s *Server) cachedGrant(ctx context.Context, w http.ResponseWriter, log logr.Logger, ns, name string, missing Kind) (*oauthv1alpha1.GoogleOAuthGrant, Key, bool) {
	g, err := s.grant(ctx, ns, name)
	if err != nil {
		log.Error(err, "reading the grant")
		s.page(w, errorPage)
		return nil, nil, false
	}
	if g == nil {
		s.page(w, Page{Kind: missing})
		return nil, nil, false
	}
	key, err := s.key(ctx)
	if err != nil {
		log.Error(err, "reading the consent-link signing key")
		s.page(w, errorPage)
		return nil, nil, false
	}
	return g, key, true
}

// record reads the grant's link record live, for a request whose link or state is signed
// (so it comes from someone grantkeeper gave the link to) and which writes the record next:
// the write is preconditioned on the version read here.
func (s *Server) record(ctx context.Context, w http.ResponseWriter, log logr.Logger, ns, name string, missing Kind) (*corev1.Secret, *Record, bool) {
	sec, rec, err := s.Links.Store.Load(ctx, ns, name)
	var werr *writable.Error
	if errors.As(err, &werr) {
		// A Secret of the link's name that is not the grant's: no link of ours.
		s.page(w, Page{Kind: missing})
		return nil, nil, false
	}
	if err != nil {
		log.Error(err, "reading the consent link")
		s.page(w, errorPage)
		return nil, nil, false
	}
	return sec, rec, true
}

// serves reports whether the grant's namespace is one the manager manages (--namespaces).
func (s *Server) serves(ns string) bool {
	return len(s.Namespaces) == 0 || slices.Contains(s.Namespaces, ns)
}

// offered is whether the grant asks for a person now: a link it no longer asks for, and
// the attempts that opened it, are withdrawn.
func offered(g *oauthv1alpha1.GoogleOAuthGrant) bool {
	return g.Status.Consent == oauthv1alpha1.ConsentRequired
}

var errorPage = Page{Kind: PageError, Detail: "The consent service could not complete this step. Try the link again in a minute."}

// open answers a consent link: a redirect to Google's consent screen for a live link.
func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ns, name, token, ok := ParseLinkPath(r.URL.Path)
	if !ok || !s.serves(ns) {
		s.page(w, Page{Kind: PageUnknown})
		return
	}
	log := s.Log.WithValues("grant", ns+"/"+name)
	g, key, ok := s.cachedGrant(ctx, w, log, ns, name, PageUnknown)
	if !ok {
		return
	}
	// A forged or altered link, or one of a deleted grant, ends here, unread.
	id, expires, ok := key.OpenLink(ns, name, string(g.UID), token)
	if !ok {
		s.page(w, Page{Kind: PageUnknown})
		return
	}
	now := s.Clock.Now()
	if !now.Before(expires) {
		s.page(w, Page{Kind: PageExpired, Namespace: ns, Grant: name})
		return
	}
	sec, rec, ok := s.record(ctx, w, log, ns, name, PageUnknown)
	if !ok {
		return
	}
	switch rec.Check(id, string(g.UID), offered(g), now) {
	case LinkUnknown:
		s.page(w, Page{Kind: PageUnknown})
		return
	case LinkUsed:
		s.page(w, Page{Kind: PageUsed, Namespace: ns, Grant: name})
		return
	case LinkExpired:
		s.page(w, Page{Kind: PageExpired, Namespace: ns, Grant: name})
		return
	}
	c, err := ClientFor(ctx, s.Reader, g, s.ManagerNamespace)
	if err != nil {
		log.Info("the grant's OAuth client cannot be read", "error", err.Error())
		s.page(w, Page{Kind: PageError, Namespace: ns, Grant: name, Detail: "The grant's OAuth client cannot be used; its owner sees why in the grant's status."})
		return
	}
	state, nonce := key.NewState(ns, name, string(g.UID), now)
	verifier := oauth2.GenerateVerifier()
	rec.Attempt = &Attempt{StateHash: Hash(nonce), Verifier: verifier, Started: now.UTC().Truncate(time.Second), LinkHash: rec.LinkHash}
	if err := s.Links.Store.Save(ctx, g, sec, rec); err != nil {
		// A conflict: another replica or tab opened or used the link at the same moment.
		log.Info("recording the sign-in attempt failed", "error", err.Error())
		s.page(w, errorPage)
		return
	}
	log.Info("consent link opened")
	target := AuthRequest{AuthURL: s.AuthURL, ClientID: c.ID, RedirectURI: s.RedirectURI(), Scopes: rec.Scopes,
		State: state, Verifier: verifier, LoginHint: g.Spec.LoginHint}.URL()
	// No body (http.Redirect would echo the URL, state included, in a page).
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

var errorCodePattern = regexp.MustCompile(`^[a-z_]{1,64}$`)

// callback completes a sign-in: check the state, claim the link, exchange the code, check
// the account, store the refresh token (nothing in the grant: its status is the controller's).
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	st, ok := ParseSignedState(q.Get("state"))
	ns, name, nonce := st.Namespace, st.Name, st.Nonce
	if !ok || !s.serves(ns) {
		s.page(w, Page{Kind: PageBadState})
		return
	}
	log := s.Log.WithValues("grant", ns+"/"+name)
	g, key, ok := s.cachedGrant(ctx, w, log, ns, name, PageBadState)
	if !ok {
		return
	}
	// Every state grantkeeper did not sign for this grant gets the same 400, unread (finding 9).
	if !key.Signed(st, string(g.UID)) {
		s.page(w, Page{Kind: PageBadState})
		return
	}
	now := s.Clock.Now()
	base := Page{Namespace: ns, Grant: name}
	if now.Sub(st.Started) >= AttemptTTL {
		base.Kind = PageExpired
		s.page(w, base)
		return
	}
	sec, rec, ok := s.record(ctx, w, log, ns, name, PageBadState)
	if !ok {
		return
	}
	switch rec.CheckState(nonce, string(g.UID), offered(g), now) {
	case StateUnknown:
		s.page(w, Page{Kind: PageBadState})
		return
	case StateUsed:
		base.Kind = PageUsed
		s.page(w, base)
		return
	case StateExpired:
		base.Kind = PageExpired
		s.page(w, base)
		return
	}
	if e := q.Get("error"); e != "" {
		// The person declined (or Google refused): the attempt ends, the link stays.
		rec.Attempt = nil
		if err := s.Links.Store.Save(ctx, g, sec, rec); err != nil && !apierrors.IsConflict(err) {
			log.Error(err, "ending the sign-in attempt")
		}
		if e == "access_denied" {
			s.event(g, "Warning", "ConsentDenied", "The account owner declined consent at Google; nothing was stored and the consent link still works")
			log.Info("consent denied")
			base.Kind = PageDenied
			s.page(w, base)
			return
		}
		if !errorCodePattern.MatchString(e) {
			e = "unknown error"
		}
		log.Info("Google answered the sign-in with an error", "error", e)
		base.Kind, base.Detail = PageError, fmt.Sprintf("Google answered %q. Nothing was stored; open the consent link again.", e)
		s.page(w, base)
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > maxCodeLength {
		s.page(w, Page{Kind: PageBadState})
		return
	}
	// Claim the link before using the code: of two callbacks with this state, one wins.
	verifier := rec.Attempt.Verifier
	claimed := *rec
	claimed.Attempt, claimed.UsedAt, claimed.UsedFingerprint, claimed.UsedStateHash = nil, now.UTC(), g.Status.InputsFingerprint, Hash(nonce)
	if err := s.Links.Store.Save(ctx, g, sec, &claimed); err != nil {
		if apierrors.IsConflict(err) {
			base.Kind = PageUsed
			s.page(w, base)
			return
		}
		log.Error(err, "claiming the consent link")
		s.page(w, errorPage)
		return
	}
	// release makes the link usable again when nothing was stored.
	release := func() {
		sec, rec, err := s.Links.Store.Load(ctx, ns, name)
		if err == nil && rec != nil {
			rec.UsedAt, rec.UsedFingerprint, rec.UsedStateHash = time.Time{}, "", ""
			err = s.Links.Store.Save(ctx, g, sec, rec)
		}
		if err != nil {
			log.Error(err, "releasing the consent link")
		}
	}
	c, err := ClientFor(ctx, s.Reader, g, s.ManagerNamespace)
	if err != nil {
		release()
		log.Info("the grant's OAuth client cannot be read", "error", err.Error())
		base.Kind, base.Detail = PageError, "The grant's OAuth client cannot be used; nothing was stored."
		s.page(w, base)
		return
	}
	tok, err := s.Tokens.Exchange(ctx, c, code, s.RedirectURI(), verifier, now)
	if err != nil {
		release()
		var re *oauth2.RetrieveError
		why := "the token endpoint could not be reached"
		if errors.As(err, &re) && errorCodePattern.MatchString(re.ErrorCode) {
			why = "Google answered " + re.ErrorCode
		}
		log.Info("exchanging the authorization code failed", "why", why)
		base.Kind, base.Detail = PageError, fmt.Sprintf("Google did not complete the sign-in (%s). Nothing was stored; open the consent link again.", why)
		s.page(w, base)
		return
	}
	account, err := idtoken.Parse(tok.IDToken)
	if err != nil {
		release()
		log.Info("the token response has no usable ID token", "error", err.Error())
		base.Kind, base.Detail = PageError, "Google's answer did not name the account. Nothing was stored; open the consent link again."
		s.page(w, base)
		return
	}
	kind, store, missing := Outcome(Callback{Requested: rec.Scopes, Granted: tok.Scopes, LoginHint: g.Spec.LoginHint, Email: account.Email, EmailVerified: account.EmailVerified})
	if !store {
		release()
		why := "is not spec.loginHint " + g.Spec.LoginHint
		if strings.EqualFold(account.Email, g.Spec.LoginHint) {
			why = "matches spec.loginHint, but Google has not verified that address (email_verified is not true)"
		}
		s.event(g, "Warning", "ConsentAccountMismatch", fmt.Sprintf("Consent came from Google account %s, which %s; nothing was stored and the consent link still works", account.Email, why))
		log.Info("consent from another account than spec.loginHint", "expected", g.Spec.LoginHint, "actual", account.Email, "emailVerified", account.EmailVerified)
		base.Kind, base.Actual = kind, account.Email
		s.page(w, base)
		return
	}
	base.Kind, base.Scopes, base.Missing = kind, tok.Scopes, missing
	next := ""
	if kind == PagePartial {
		// A follow-up link right away, for all of spec.scopes (without include_granted_scopes
		// a consent must ask for them all; the controller keeps it: same scopes). The
		// controller may be minting in the same moment (it saw the used link): retry on
		// the record's conflict.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sec, rec, err := s.Links.Store.Load(ctx, ns, name)
			if err != nil || rec == nil {
				return err
			}
			s.Links.Mint(key, g, rec, g.Spec.Scopes, "scopes are missing", now)
			if err := s.Links.Store.Save(ctx, g, sec, rec); err != nil {
				return err
			}
			next = rec.URL
			return nil
		})
		if err != nil {
			log.Error(err, "minting the follow-up link")
		}
		base.NextLink = next
	}
	// The refresh token is the callback's one fact: it writes nothing in the grant. The
	// Secret's watch wakes the controller, whose token request reports the account (from
	// the ID token) and status.consent.
	if err := StoreRefreshToken(ctx, s.Reader, s.Client, g, tok.RefreshToken); err != nil {
		release()
		var werr *writable.Error
		if errors.As(err, &werr) {
			s.event(g, "Warning", oauthv1alpha1.ReasonSecretNotOwned, werr.Error())
			log.Info("the refresh-token Secret is not the grant's", "secret", werr.Secret)
			base.Kind, base.Detail = PageError, "The grant's refresh-token Secret cannot be written by grantkeeper; nothing was stored. The grant's owner sees why in its events."
			s.page(w, base)
			return
		}
		log.Error(err, "storing the refresh token")
		s.page(w, errorPage)
		return
	}
	note := fmt.Sprintf("Google account %s consented to %s; the refresh token is in Secret %q", account.Email, strings.Join(tok.Scopes, " "), g.RefreshTokenSecretName())
	if len(missing) > 0 {
		note += fmt.Sprintf("; not granted: %s (a new link for them: kubectl grantkeeper consent-link %s -n %s)", strings.Join(missing, " "), g.Name, g.Namespace)
	}
	s.event(g, "Normal", "ConsentGranted", note)
	log.Info("consent granted", "account", account.Email, "missingScopes", len(missing))
	s.page(w, base)
}

func (s *Server) event(g *oauthv1alpha1.GoogleOAuthGrant, typ, reason, note string) {
	if s.Recorder != nil {
		s.Recorder.Eventf(g, nil, typ, reason, "Consent", "%s", note)
	}
}
