package fakegoogle

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// DefaultAccounts are the accounts every fake knows.
var DefaultAccounts = []Account{
	{Email: "ana@example.com", Sub: "110000000000000000001"},
	{Email: "ben@example.com", Sub: "110000000000000000002"},
	{Email: "chris@example.com", Sub: "110000000000000000003"},
}

type consentState struct {
	accounts []Account
	// granted: what each account granted each client, for include_granted_scopes.
	granted map[[2]string][]string
	// next: the account that consents next without a browser ("" : login_hint, else the first).
	next string
	// redirects: the redirect URIs registered per client; a client with none accepts any
	// loopback URI (as Google does for Desktop clients).
	redirects map[string][]string
}

func (s *Server) consentLocked() *consentState {
	c := &s.consent
	if c.granted == nil {
		c.accounts = slices.Clone(DefaultAccounts)
		c.granted = map[[2]string][]string{}
		c.redirects = map[string][]string{}
	}
	return c
}

// RegisterRedirectURI registers an authorized redirect URI on a (Web) client: from then on
// the client's authorization requests must name one of its registered URIs exactly.
func (s *Server) RegisterRedirectURI(clientID, uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.consentLocked()
	c.redirects[clientID] = append(c.redirects[clientID], uri)
}

// AddAccount makes another account available at the consent page.
func (s *Server) AddAccount(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.consentLocked()
	c.accounts = append(c.accounts, a)
}

// Accounts lists the accounts the fake knows.
func (s *Server) Accounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.consentLocked().accounts)
}

// ConsentAs makes the next consent without a browser come from email ("" : login_hint,
// else the first account).
func (s *Server) ConsentAs(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consentLocked().next = email
}

// GrantedScopes is what an account has granted a client (include_granted_scopes adds to it).
func (s *Server) GrantedScopes(email, clientID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.consentLocked().granted[[2]string{email, clientID}])
}

// accountByEmailLocked is the account that signs in as email at the consent page.
func (s *Server) accountByEmailLocked(email string) *Account {
	for _, a := range s.consentLocked().accounts {
		if strings.EqualFold(a.Email, email) {
			return &a
		}
	}
	return nil
}

// forgetGrantLocked: revoking a token revokes the grant it belongs to (Google: "revoking a
// combined authorization revokes all of its scopes").
func (s *Server) forgetGrantLocked(rt *refreshToken) {
	if rt.account != nil {
		delete(s.consentLocked().granted, [2]string{rt.account.Email, rt.clientID})
	}
}

// authRequest is a validated authorization request.
type authRequest struct {
	q        url.Values
	clientID string
	redirect *url.URL
	scopes   []string
}

// checkAuthLocked validates an authorization request as Google does. It answers the
// request itself (an error page, or a redirect with an error) and returns nil when invalid.
func (s *Server) checkAuthLocked(w http.ResponseWriter, r *http.Request, q url.Values) *authRequest {
	clientID := q.Get("client_id")
	if c := s.clients[clientID]; c == nil || c.deleted {
		http.Error(w, "Error 401: invalid_client. The OAuth client was not found.", http.StatusUnauthorized)
		return nil
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || !isLoopback(redirect.Hostname()) || redirect.Fragment != "" || redirect.User != nil {
		http.Error(w, "Error 400: redirect_uri_mismatch. Only http loopback redirect URIs are accepted here.", http.StatusBadRequest)
		return nil
	}
	if reg := s.consentLocked().redirects[clientID]; len(reg) > 0 && !slices.Contains(reg, q.Get("redirect_uri")) {
		http.Error(w, "Error 400: redirect_uri_mismatch. The redirect URI in the request does not match the ones authorized for the OAuth client.", http.StatusBadRequest)
		return nil
	}
	a := &authRequest{q: q, clientID: clientID, redirect: redirect, scopes: strings.Fields(q.Get("scope"))}
	if q.Get("response_type") != "code" {
		a.back(w, r, url.Values{"error": {"unsupported_response_type"}})
		return nil
	}
	if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
		a.back(w, r, url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge_method must be S256"}})
		return nil
	}
	if len(a.scopes) == 0 {
		a.back(w, r, url.Values{"error": {"invalid_scope"}})
		return nil
	}
	return a
}

// back redirects to the client's redirect URI with v and the request's state.
func (a *authRequest) back(w http.ResponseWriter, r *http.Request, v url.Values) {
	v.Set("state", a.q.Get("state"))
	u := *a.redirect
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// grantLocked issues a code for account approving scopes and redirects back.
func (s *Server) grantLocked(w http.ResponseWriter, r *http.Request, a *authRequest, account Account, approved []string) {
	c := s.consentLocked()
	key := [2]string{account.Email, a.clientID}
	scopes := slices.Clone(approved)
	if a.q.Get("include_granted_scopes") == "true" {
		for _, sc := range c.granted[key] {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	for _, sc := range scopes {
		if !slices.Contains(c.granted[key], sc) {
			c.granted[key] = append(c.granted[key], sc)
		}
	}
	code := "4/fake-" + randomString(24)
	s.issuedCodes = append(s.issuedCodes, code)
	s.codes[code] = &authCode{clientID: a.clientID, redirectURI: a.q.Get("redirect_uri"), challenge: a.q.Get("code_challenge"), scopes: scopes,
		offline: a.q.Get("access_type") == "offline", account: &account}
	a.back(w, r, url.Values{"code": {code}, "scope": {strings.Join(scopes, " ")}})
}

// identity scopes are granted with sign-in, without a checkbox (as Google shows them).
func identityScope(s string) bool {
	return s == "openid" || s == "email" || s == "profile"
}

// auth is the authorization endpoint. A browser (Accept: text/html) gets the consent page:
// an account chooser (login_hint preselects), one checkbox per requested scope, Allow and
// Deny. A program without a browser (the plugin's tests) gets the decision at once, as
// DenyNextConsent, GrantOnly and ConsentAs set it.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.checkAuthLocked(w, r, q)
	if a == nil {
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		s.consentPageLocked(w, a)
		return
	}
	if s.deny {
		s.deny = false
		a.back(w, r, url.Values{"error": {"access_denied"}})
		return
	}
	scopes := a.scopes
	if s.grantOnly != nil {
		var granted []string
		for _, sc := range scopes {
			if slices.Contains(s.grantOnly, sc) || identityScope(sc) {
				granted = append(granted, sc)
			}
		}
		scopes = granted
	}
	c := s.consentLocked()
	account := s.accountByEmailLocked(c.next)
	if account == nil {
		account = s.accountByEmailLocked(q.Get("login_hint"))
	}
	if account == nil {
		account = &c.accounts[0]
	}
	s.grantLocked(w, r, a, *account, scopes)
}

// consentPost is the consent page's form: Allow (with the chosen account and scopes) or Deny.
func (s *Server) consentPost(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Error 400: invalid_request", http.StatusBadRequest)
		return
	}
	q, err := url.ParseQuery(r.PostForm.Get("request"))
	if err != nil {
		http.Error(w, "Error 400: invalid_request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.checkAuthLocked(w, r, q)
	if a == nil {
		return
	}
	if r.PostForm.Get("action") != "allow" {
		a.back(w, r, url.Values{"error": {"access_denied"}})
		return
	}
	account := s.accountByEmailLocked(r.PostForm.Get("account"))
	if account == nil {
		http.Error(w, "Error 400: choose an account", http.StatusBadRequest)
		return
	}
	var approved []string
	for _, sc := range a.scopes {
		if identityScope(sc) || slices.Contains(r.PostForm["scope"], sc) {
			approved = append(approved, sc)
		}
	}
	s.grantLocked(w, r, a, *account, approved)
}

type pageAccount struct {
	Account
	Checked bool
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Google Accounts (fake)</title>
<style>body{font-family:sans-serif;max-width:36em;margin:2em auto}fieldset{margin:1em 0}label{display:block;margin:.3em 0}</style></head>
<body><h1>Choose an account</h1><p>to continue to <b id="client">{{.Client}}</b> (fake Google)</p>
<form method="post" action="/auth/consent">
<input type="hidden" name="request" value="{{.Request}}">
<fieldset id="accounts"><legend>Account</legend>
{{range .Accounts}}<label><input type="radio" name="account" value="{{.Email}}"{{if .Checked}} checked{{end}}> {{.Email}}</label>
{{end}}</fieldset>
<fieldset id="scopes"><legend>Select what the app can access</legend>
{{range .Scopes}}<label><input type="checkbox" name="scope" value="{{.}}" checked> {{.}}</label>
{{end}}</fieldset>
<button type="submit" name="action" value="deny" id="deny">Cancel</button>
<button type="submit" name="action" value="allow" id="allow">Allow</button>
</form></body></html>
`))

func (s *Server) consentPageLocked(w http.ResponseWriter, a *authRequest) {
	c := s.consentLocked()
	hint := s.accountByEmailLocked(a.q.Get("login_hint"))
	var accounts []pageAccount
	for i, acc := range c.accounts {
		checked := (hint != nil && hint.Email == acc.Email) || (hint == nil && i == 0)
		accounts = append(accounts, pageAccount{Account: acc, Checked: checked})
	}
	var scopes []string
	for _, sc := range a.scopes {
		if !identityScope(sc) {
			scopes = append(scopes, sc)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = consentPage.Execute(w, map[string]any{"Client": a.clientID, "Request": a.q.Encode(), "Accounts": accounts, "Scopes": scopes})
}
