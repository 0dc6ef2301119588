package hydra

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"time"
)

// DefaultSubject is the account the login app signs in when the request has no login_hint.
const DefaultSubject = "user@example.com"

// LoginConsent is the login and consent app Hydra delegates to (URLS_LOGIN, URLS_CONSENT):
// it signs in the login_hint's subject (DefaultSubject without one) and grants the requested
// scopes and audience, both through Hydra's admin API, the way a provider's own login pages
// would after a person's password and "Allow". Tests change its answers with SetDecision.
type LoginConsent struct {
	// URL is the app's base URL (loopback).
	URL string

	srv   *httptest.Server
	admin *Admin

	mu       sync.Mutex
	decision func(ConsentRequest) Decision
	seen     []ConsentRequest
}

// ConsentRequest is what Hydra asks the app to consent to.
type ConsentRequest struct {
	Subject   string
	ClientID  string
	Scopes    []string
	Audience  []string
	LoginHint string
}

// Decision is the app's answer: Deny refuses (access_denied); otherwise Scopes (nil: all
// requested) are granted to Subject (empty: the request's subject).
type Decision struct {
	Deny   bool
	Scopes []string
}

func newLoginConsent() *LoginConsent {
	a := &LoginConsent{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /consent", a.consent)
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "hydra error: "+r.URL.Query().Get("error")+": "+r.URL.Query().Get("error_description"), http.StatusBadRequest)
	})
	a.srv = httptest.NewUnstartedServer(mux)
	a.srv.Config.ReadHeaderTimeout = 5 * time.Second
	a.srv.Start()
	a.URL = a.srv.URL
	return a
}

func (a *LoginConsent) close() { a.srv.Close() }

// SetDecision sets how the app answers consent requests (nil: grant everything requested).
func (a *LoginConsent) SetDecision(f func(ConsentRequest) Decision) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.decision = f
}

// Requests are the consent requests the app has answered, oldest first.
func (a *LoginConsent) Requests() []ConsentRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

type redirect struct {
	RedirectTo string `json:"redirect_to"`
}

func (a *LoginConsent) login(w http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("login_challenge")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var req struct {
		Skip        bool   `json:"skip"`
		Subject     string `json:"subject"`
		OIDCContext struct {
			LoginHint string `json:"login_hint"`
		} `json:"oidc_context"`
	}
	q := url.Values{"login_challenge": {ch}}
	if err := a.admin.do(ctx, http.MethodGet, "/admin/oauth2/auth/requests/login", q, nil, http.StatusOK, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	subject := req.Subject // set when Hydra remembers a session (skip)
	if subject == "" {
		subject = req.OIDCContext.LoginHint
	}
	if subject == "" {
		subject = DefaultSubject
	}
	var out redirect
	if err := a.admin.do(ctx, http.MethodPut, "/admin/oauth2/auth/requests/login/accept", q,
		map[string]any{"subject": subject, "remember": false}, http.StatusOK, &out); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, out.RedirectTo, http.StatusFound)
}

func (a *LoginConsent) consent(w http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("consent_challenge")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var req struct {
		Subject        string   `json:"subject"`
		RequestedScope []string `json:"requested_scope"`
		RequestedAud   []string `json:"requested_access_token_audience"`
		Client         struct {
			ClientID string `json:"client_id"`
		} `json:"client"`
		OIDCContext struct {
			LoginHint string `json:"login_hint"`
		} `json:"oidc_context"`
	}
	q := url.Values{"consent_challenge": {ch}}
	if err := a.admin.do(ctx, http.MethodGet, "/admin/oauth2/auth/requests/consent", q, nil, http.StatusOK, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	cr := ConsentRequest{Subject: req.Subject, ClientID: req.Client.ClientID, Scopes: req.RequestedScope,
		Audience: req.RequestedAud, LoginHint: req.OIDCContext.LoginHint}
	a.mu.Lock()
	decide := a.decision
	a.seen = append(a.seen, cr)
	a.mu.Unlock()
	d := Decision{}
	if decide != nil {
		d = decide(cr)
	}
	var out redirect
	var err error
	if d.Deny {
		err = a.admin.do(ctx, http.MethodPut, "/admin/oauth2/auth/requests/consent/reject", q,
			map[string]any{"error": "access_denied", "error_description": "The resource owner denied the request"}, http.StatusOK, &out)
	} else {
		scopes := d.Scopes
		if scopes == nil {
			scopes = req.RequestedScope
		}
		err = a.admin.do(ctx, http.MethodPut, "/admin/oauth2/auth/requests/consent/accept", q,
			map[string]any{"grant_scope": scopes, "grant_access_token_audience": req.RequestedAud, "remember": false}, http.StatusOK, &out)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, out.RedirectTo, http.StatusFound)
}
