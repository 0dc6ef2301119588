package controllers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/grantinputs"
	"github.com/grantkeeper/grantkeeper/internal/risc"
)

// accountSubIndex indexes grants by status.account.sub: security events name accounts by sub.
const accountSubIndex = "grantkeeper.accountSub"

// DefaultFillFloor is the least time between two catch-up reads of every grant's Secrets
// (fill): a replica that has not made the token requests itself (a standby, or just started)
// learns the refresh tokens when an event names one it does not know.
const DefaultFillFloor = 30 * time.Second

// SecurityEvents applies Cross-Account Protection events (internal/risc) to grants. Every
// replica serves the receiver: effects are API writes guarded by resourceVersion, and the
// leader's reconciler honours them (oauthv1alpha1.SecurityReasons).
type SecurityEvents struct {
	Client    client.Client // the manager's cached client
	APIReader client.Reader
	Recorder  events.EventRecorder
	Index     *TokenIndex
	Clock     clock.PassiveClock
	// FillFloor: see DefaultFillFloor (0: the default).
	FillFloor      time.Duration
	NamespacesOnly bool

	fillMu   sync.Mutex
	lastFill time.Time
}

// SetupWithManager registers the grant index by account sub.
func (s *SecurityEvents) SetupWithManager(mgr ctrl.Manager) error {
	if s.APIReader == nil {
		s.APIReader = mgr.GetAPIReader()
	}
	return mgr.GetFieldIndexer().IndexField(context.Background(), &oauthv1alpha1.GoogleOAuthGrant{}, accountSubIndex, func(o client.Object) []string {
		if a := o.(*oauthv1alpha1.GoogleOAuthGrant).Status.Account; a != nil && a.Sub != "" {
			return []string{a.Sub}
		}
		return nil
	})
}

// AddReceiver serves h on addr (path risc.Path) on every replica, with timeouts at every stage.
func AddReceiver(mgr ctrl.Manager, addr string, h http.Handler) error {
	return addReceiver(mgr, addr, nil, h)
}

// AddReceiverListener is AddReceiver on a listener the caller opened (tests: port 0).
func AddReceiverListener(mgr ctrl.Manager, ln net.Listener, h http.Handler) error {
	return addReceiver(mgr, "", ln, h)
}

func addReceiver(mgr ctrl.Manager, addr string, ln net.Listener, h http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle(risc.Path, h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	return mgr.Add(receiverRunnable{addr: addr, ln: ln, srv: srv, log: mgr.GetLogger().WithName("risc")})
}

type receiverRunnable struct {
	addr string
	ln   net.Listener
	srv  *http.Server
	log  logr.Logger
}

// NeedLeaderElection: every replica receives (Google posts to whichever the Service picks).
func (receiverRunnable) NeedLeaderElection() bool { return false }

func (r receiverRunnable) Start(ctx context.Context) error {
	ln := r.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", r.addr); err != nil {
			return fmt.Errorf("security-event receiver: %w", err)
		}
	}
	r.log.Info("security-event receiver listening", "address", ln.Addr().String(), "path", risc.Path)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(sctx)
	}()
	if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// KnownClient reports whether some grant uses clientID: an indexed grant's client, or a
// client object's; after a catch-up read when neither knows it.
func (s *SecurityEvents) KnownClient(ctx context.Context, clientID string) bool {
	if clientID == "" {
		return false
	}
	if s.Index.HasClient(clientID) || s.clientObjectHas(ctx, clientID) {
		return true
	}
	return s.fill(ctx) && s.Index.HasClient(clientID)
}

func (s *SecurityEvents) clientObjectHas(ctx context.Context, clientID string) bool {
	lists := []client.ObjectList{&oauthv1alpha1.GoogleOAuthClientList{}}
	if !s.NamespacesOnly {
		lists = append(lists, &oauthv1alpha1.ClusterGoogleOAuthClientList{})
	}
	for _, l := range lists {
		if err := s.Client.List(ctx, l); err != nil {
			continue
		}
		switch l := l.(type) {
		case *oauthv1alpha1.GoogleOAuthClientList:
			for _, c := range l.Items {
				if c.Status.ClientID == clientID {
					return true
				}
			}
		case *oauthv1alpha1.ClusterGoogleOAuthClientList:
			for _, c := range l.Items {
				if c.Status.ClientID == clientID {
					return true
				}
			}
		}
	}
	return false
}

// Apply carries out one verified event (risc.Sink).
func (s *SecurityEvents) Apply(ctx context.Context, ev risc.Event, at time.Time) (string, error) {
	eff := risc.EffectOf(ev)
	if eff.Action == risc.Ignore {
		return risc.ResultIgnored, nil
	}
	grants, err := s.targets(ctx, eff.Target)
	if err != nil {
		return "", err
	}
	if len(grants) == 0 && eff.Target.TokenKey != "" && s.fill(ctx) {
		grants, err = s.targets(ctx, eff.Target)
		if err != nil {
			return "", err
		}
	}
	grants = s.ofClients(ctx, grants, eff.Target.Clients)
	if len(grants) == 0 {
		return risc.ResultNoMatch, nil
	}
	var errs []error
	for i := range grants {
		g := &grants[i]
		switch eff.Action {
		case risc.Revoke:
			errs = append(errs, s.revoke(ctx, g, eff, at))
		case risc.Enable:
			errs = append(errs, s.enable(ctx, g, eff))
		case risc.Warn:
			s.Recorder.Eventf(g, nil, corev1.EventTypeWarning, eff.Reason, "SecurityEvent", "%s", eff.Message)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return risc.ResultApplied, nil
}

// ofClients keeps the grants whose OAuth client ID is one of clients (all when clients is
// empty). A token revocation is about one client project's tokens; without this, anyone who
// may create an OAuth client could have Google's genuine events about their own project
// revoke every other grant of the same account. A grant whose client ID is not known after
// a catch-up read is kept: revoking wrongly costs a consent, missing a revocation costs more.
func (s *SecurityEvents) ofClients(ctx context.Context, grants []oauthv1alpha1.GoogleOAuthGrant, clients []string) []oauthv1alpha1.GoogleOAuthGrant {
	if len(clients) == 0 {
		return grants
	}
	filled := false
	out := grants[:0:0]
	for i := range grants {
		id := s.clientOf(ctx, &grants[i])
		if id == "" && !filled {
			filled = true
			if s.fill(ctx) {
				id = s.clientOf(ctx, &grants[i])
			}
		}
		if id == "" || slices.Contains(clients, id) {
			out = append(out, grants[i])
		}
	}
	return out
}

// clientOf is a grant's OAuth client ID: from the token index (what its last token request
// used), else its client object's status; "" when neither knows.
func (s *SecurityEvents) clientOf(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant) string {
	if id := s.Index.ClientOf(client.ObjectKeyFromObject(g)); id != "" {
		return id
	}
	ref := grantinputs.Of(g).ClientRef()
	if ref == nil || (ref.Kind == oauthv1alpha1.KindClusterGoogleOAuthClient && s.NamespacesOnly) {
		return ""
	}
	// Its status only: the Secret's namespace does not matter here.
	if co, err := grantinputs.GetClient(ctx, s.Client, ref.Kind, types.NamespacedName{Namespace: g.Namespace, Name: ref.Name}, ""); err == nil && co != nil {
		return co.ClientID
	}
	return ""
}

// targets are the grants (from the cache) an effect concerns.
func (s *SecurityEvents) targets(ctx context.Context, t risc.Target) ([]oauthv1alpha1.GoogleOAuthGrant, error) {
	if t.Sub != "" {
		var list oauthv1alpha1.GoogleOAuthGrantList
		if err := s.Client.List(ctx, &list, client.MatchingFields{accountSubIndex: t.Sub}); err != nil {
			return nil, err
		}
		return list.Items, nil
	}
	var out []oauthv1alpha1.GoogleOAuthGrant
	for _, key := range s.Index.Grants(t.TokenKey) {
		g := &oauthv1alpha1.GoogleOAuthGrant{}
		if err := s.Client.Get(ctx, key, g); err != nil {
			if apierrors.IsNotFound(err) {
				s.Index.Remove(key)
				continue
			}
			return nil, err
		}
		out = append(out, *g)
	}
	return out, nil
}

func (s *SecurityEvents) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

// revoke records a revoking event in the grant's derived Secret (derivedsecret.Withdraw: the
// access token withdrawn, the reason and Google's words beside it; a grant without a derived
// Secret gets one in that shape). That is all the receiver writes: the Secret's watch wakes
// the leader's reconciler, which derives Revoked=True and Ready=False from it (plan) and is
// the grant status's only writer. Idempotent, so a redelivery or another replica changes
// nothing. The refresh-token Secret is the user's data and is left as it is.
func (s *SecurityEvents) revoke(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, eff risc.Effect, at time.Time) error {
	wrote, err := derivedsecret.Withdraw(ctx, s.Client, s.APIReader, g, at, s.now(), eff.Reason, eff.Message)
	if err == nil && wrote {
		logf.FromContext(ctx).Info("grant revoked by a security event", "grant", client.ObjectKeyFromObject(g).String(), "reason", eff.Reason)
	}
	return err
}

// enable records account-enabled in a derived Secret withdrawn for AccountDisabled
// (derivedsecret.Enable); the reconciler, woken by the Secret's watch, lifts the revocation
// and requests a token.
func (s *SecurityEvents) enable(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, eff risc.Effect) error {
	wrote, err := derivedsecret.Enable(ctx, s.Client, s.APIReader, g, s.now(), eff.Message)
	if err == nil && wrote {
		logf.FromContext(ctx).Info("account re-enabled by a security event", "grant", client.ObjectKeyFromObject(g).String())
	}
	return err
}

// fill reads every grant's refresh-token (and client) Secret into the index, at most once per
// FillFloor; it reports whether it ran.
func (s *SecurityEvents) fill(ctx context.Context) bool {
	s.fillMu.Lock()
	defer s.fillMu.Unlock()
	floor := s.FillFloor
	if floor == 0 {
		floor = DefaultFillFloor
	}
	if !s.lastFill.IsZero() && s.now().Sub(s.lastFill) < floor {
		return false
	}
	s.lastFill = s.now()
	var list oauthv1alpha1.GoogleOAuthGrantList
	if err := s.Client.List(ctx, &list); err != nil {
		return false
	}
	for i := range list.Items {
		g := &list.Items[i]
		rt, clientID := s.readRefreshToken(ctx, g)
		s.Index.Put(client.ObjectKeyFromObject(g), rt, clientID)
	}
	return true
}

// readRefreshToken reads a grant's refresh token and client ID live ("" when it has none or
// they cannot be read).
func (s *SecurityEvents) readRefreshToken(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant) (refreshToken, clientID string) {
	l, err := grantinputs.ReadLive(ctx, s.APIReader, g)
	if err != nil || l.RefreshToken == "" {
		return "", ""
	}
	return l.RefreshToken, l.ClientID
}

var _ manager.LeaderElectionRunnable = receiverRunnable{}
