package controllers

import (
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/grantkeeper/grantkeeper/controllers/provider"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/internal/egress"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
)

// Config is what the manager's controllers take from cmd/manager's flags, or from a test.
type Config struct {
	Options
	Tokens   TokenEndpoint
	Recorder events.EventRecorder
	// Clock defaults to the wall clock, Backoff to schedule.DefaultBackoff.
	Clock   clock.PassiveClock
	Backoff schedule.Backoff
	// MaxRevokeAttempts bounds how long deletion waits on a failing revocation (0: the default).
	MaxRevokeAttempts int32
	// ManagerNamespace is where a cluster client's Secrets are when it names no namespace.
	ManagerNamespace string
	// Consent keeps consent links (nil: off); TokenIndex learns refresh tokens for security
	// events (nil: the receiver is off).
	Consent    *consent.Links
	TokenIndex *TokenIndex
	// APIReader replaces the manager's live reader (tests count live reads); nil: the manager's.
	APIReader client.Reader
	// Egress is where OAuthClients' provider URLs may lead (--allow-*-providers).
	Egress egress.Policy
	// ProviderTimeout bounds an OAuthGrant's token or revocation request (0: 30 s).
	ProviderTimeout time.Duration
	// Decided is the reconciler's test barrier (GrantReconciler.Decided).
	Decided func(grant types.NamespacedName, began time.Time)
}

// providerTimeout bounds an OAuthGrant's token or revocation request.
const providerTimeout = 30 * time.Second

// Setup adds every controller of the manager: the GoogleOAuthGrant controller with its
// Google client kinds' controllers (SetupWithManager), the OAuthGrant controller (the same
// reconciler for the other kind), and the OAuthClient and ClusterOAuthClient controllers
// (controllers/provider). cmd/manager and the tests call it,
// so a test runs the wiring the binary runs. The reconciler is returned for what is wired
// beside it (the security-event receiver sets TokenIndex before the manager starts).
func Setup(mgr ctrl.Manager, cfg Config) (*GrantReconciler, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Backoff == (schedule.Backoff{}) {
		cfg.Backoff = schedule.DefaultBackoff
	}
	r := &GrantReconciler{
		Client: mgr.GetClient(), APIReader: cfg.APIReader, Recorder: cfg.Recorder,
		Tokens: cfg.Tokens, Clock: cfg.Clock, Backoff: cfg.Backoff, MaxRevokeAttempts: cfg.MaxRevokeAttempts,
		ManagerNamespace: cfg.ManagerNamespace, Consent: cfg.Consent, TokenIndex: cfg.TokenIndex, Decided: cfg.Decided,
	}
	if err := r.SetupWithManager(mgr, cfg.Options); err != nil {
		return nil, fmt.Errorf("setting up the grant controller: %w", err)
	}
	timeout := cfg.ProviderTimeout
	if timeout == 0 {
		timeout = providerTimeout
	}
	// Many grants share a provider: keep connections to it as Google's client does.
	tokenTransport := cfg.Egress.Transport(timeout)
	tokenTransport.MaxIdleConnsPerHost = 16
	// A custom dialer turns HTTP/2 off unless asked for; providers speak it, as Google does.
	tokenTransport.ForceAttemptHTTP2 = true
	// The OAuthGrant controller: the same steps, another kind (no consent links or security
	// events yet); its token requests dial only where Egress allows.
	p := &GrantReconciler{
		Client: mgr.GetClient(), APIReader: r.APIReader, Recorder: cfg.Recorder,
		Clock: cfg.Clock, Backoff: cfg.Backoff, MaxRevokeAttempts: cfg.MaxRevokeAttempts,
		ManagerNamespace: cfg.ManagerNamespace, Decided: cfg.Decided,
		// The transport's header timeout fires first ("timeout awaiting response headers");
		// the client's bounds a body that never ends.
		ProviderHTTP: &http.Client{Timeout: 2 * timeout, Transport: tokenTransport,
			// A token endpoint never redirects; following one could send credentials elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	if err := setupProviderGrants(mgr, r, p, cfg.Options); err != nil {
		return nil, fmt.Errorf("setting up the OAuthGrant controller: %w", err)
	}
	if err := provider.SetupWithManager(mgr, provider.ClientReconciler{Recorder: cfg.Recorder, Clock: cfg.Clock, ManagerNamespace: cfg.ManagerNamespace, Egress: cfg.Egress},
		provider.Options{NamespacesOnly: cfg.NamespacesOnly, SkipNameValidation: cfg.SkipNameValidation}); err != nil {
		return nil, fmt.Errorf("setting up the OAuth client controllers: %w", err)
	}
	return r, nil
}
