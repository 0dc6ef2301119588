// Package fakegoogle is a stand-in for Google's OAuth 2.0 endpoints, for tests and local use.
// It serves /token (refresh_token, authorization_code and service accounts' jwt-bearer
// grants, serviceaccount.go), /revoke, /tokeninfo and a
// protected /v1/whoami API the way ../shared/notes/google-oauth-facts.md describes Google:
// form bodies, client checks, Google's error JSON and status codes. The code under test cannot
// tell it from Google except by URL. Test controls revoke tokens, set token lifetimes, inject
// latency and failures, and count requests.
package fakegoogle

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a fake Google OAuth server. Use New, then Start or mount Handler yourself.
type Server struct {
	mu        sync.Mutex
	now       func() time.Time
	lifetime  time.Duration
	rtExpires time.Duration // refresh_token_expires_in to report; 0 for none
	rotate    bool
	// rotationGrace keeps a rotated-away refresh token usable for a while, as providers that
	// rotate do, so a client that crashed before storing the new one can retry.
	rotationGrace time.Duration
	latency       time.Duration
	failures      []Failure
	deny          bool     // the next consent is refused (access_denied)
	grantOnly     []string // when set, consent grants only these of the requested scopes
	// ignoreScope: refreshes ignore the request's scope and answer with every scope the
	// refresh token's account granted the client (a Google that does not narrow).
	ignoreScope bool
	consent     consentState // accounts and what they granted (consent.go)
	revokeErr   []int        // statuses for the next revoke requests
	clients     map[string]*client
	refresh     map[string]*refreshToken
	access      map[string]*accessToken
	codes       map[string]*authCode
	verifiers   []string       // PKCE verifiers received with codes (CodeVerifiers)
	issuedCodes []string       // every authorization code handed out (IssuedCodes)
	requests    map[string]int // token requests per refresh token
	times       map[string][]time.Time
	exchanges   []*Exchange
	bodyTokens  []string                 // access tokens in injected failure bodies (never valid)
	issuedFor   map[string][]IssuedToken // access tokens per refresh token, in issue order
	seq         int                      // issue order of refresh tokens
	onRotate    func()
	total       int
	revokes     int
	// Service accounts (serviceaccount.go): keys by private_key_id, the delegation table
	// (service account, user) -> scopes, the domain's users, assertions per service account.
	saKeys     map[string]*saKey
	delegation map[[2]string][]string
	users      map[string]bool
	saRequests map[string]int

	// Accounts (account.go): by refresh token; ID tokens issued; tokeninfo requests.
	accounts   map[string]Account
	idTokens   int
	tokeninfos int
	// RISC stream API (risc.go).
	stream      Stream
	riscAdmins  map[string]bool
	streamCalls int // stream API requests (StreamAPIRequests)
	onVerify    func(url, state string) error

	listener net.Listener
	http     *http.Server
}

type client struct {
	secret  string
	deleted bool
}

type refreshToken struct {
	clientID    string
	scopes      []string
	revoked     bool
	rotatedFrom string    // the refresh token this one replaced, when rotating
	account     *Account  // who consented (consent.go); nil for registered tokens
	expiresAt   time.Time // when set, unusable after this (a rotated-away token's grace)
	seq         int       // issue order: a higher seq was issued later
}

func (rt *refreshToken) usable(now time.Time) bool {
	return rt != nil && !rt.revoked && (rt.expiresAt.IsZero() || now.Before(rt.expiresAt))
}

type accessToken struct {
	refresh string
	issued  time.Time
	expiry  time.Time
	scopes  []string
	client  string
}

type authCode struct {
	clientID, redirectURI, challenge string
	scopes                           []string
	offline                          bool // access_type=offline: the exchange returns a refresh token
	account                          *Account
}

// Failure makes the token endpoint answer with Status (and Retry-After, and Body if set)
// instead of doing its job.
type Failure struct {
	Status     int
	RetryAfter string
	Body       string
	// Hang holds the request until the client gives up (a hanging endpoint).
	Hang bool
}

// New returns a server issuing one-hour tokens, on the wall clock.
func New() *Server {
	return &Server{
		now:       time.Now,
		lifetime:  time.Hour,
		clients:   map[string]*client{},
		refresh:   map[string]*refreshToken{},
		access:    map[string]*accessToken{},
		codes:     map[string]*authCode{},
		requests:  map[string]int{},
		times:     map[string][]time.Time{},
		issuedFor: map[string][]IssuedToken{},
	}
}

// Exchange is one token request as the fake saw it.
type Exchange struct {
	RefreshToken string
	Arrived      time.Time
	// Ended is when the answer was written, or when the client went away without one
	// (Answered false); zero while the request is in flight.
	Ended    time.Time
	Answered bool
	Status   int
	// RotatedTo is the new refresh token a successful rotating refresh issued.
	RotatedTo string
	// Scope is the request's scope parameter ("" when it sent none).
	Scope string
}

// IssuedToken is an access token the fake issued and when it is valid (unless revoked).
type IssuedToken struct {
	AccessToken    string
	Issued, Expiry time.Time
}

// Start listens on a free loopback port. Close stops it.
func (s *Server) Start() error { return s.StartOn("127.0.0.1:0") }

// StartOn listens on addr.
func (s *Server) StartOn(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.listener = l
	s.http = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.http.Serve(l) }()
	return nil
}

// Close stops the server.
func (s *Server) Close() {
	if s.http != nil {
		_ = s.http.Close()
	}
}

// URL is the server's base URL, such as http://127.0.0.1:41234.
func (s *Server) URL() string { return "http://" + s.listener.Addr().String() }

// TokenURL and RevokeURL are the endpoints to configure the code under test with.
func (s *Server) TokenURL() string  { return s.URL() + "/token" }
func (s *Server) RevokeURL() string { return s.URL() + "/revoke" }

// AddClient registers an OAuth client.
func (s *Server) AddClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = &client{secret: secret}
}

// DeleteClient marks a client deleted, as when it is removed in the Cloud console.
func (s *Server) DeleteClient(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[id]; c != nil {
		c.deleted = true
	}
}

// AddRefreshToken registers a refresh token issued to clientID with the given scopes.
func (s *Server) AddRefreshToken(token, clientID string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addRefreshLocked(token, &refreshToken{clientID: clientID, scopes: scopes})
}

func (s *Server) addRefreshLocked(token string, rt *refreshToken) {
	s.seq++
	rt.seq = s.seq
	s.refresh[token] = rt
}

// NewRefreshToken registers and returns a fresh random refresh token.
func (s *Server) NewRefreshToken(clientID string, scopes ...string) string {
	t := "1//fake-" + randomString(24)
	s.AddRefreshToken(t, clientID, scopes...)
	return t
}

// RevokeRefreshToken revokes a refresh token (as a user would at myaccount.google.com).
func (s *Server) RevokeRefreshToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt := s.refresh[token]; rt != nil {
		rt.revoked = true
		s.forgetGrantLocked(rt)
	}
}

// Revoked reports whether a refresh token has been revoked.
func (s *Server) Revoked(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.refresh[token]
	return rt != nil && rt.revoked
}

// RefreshTokenUsable reports whether the token endpoint would accept this refresh token now.
func (s *Server) RefreshTokenUsable(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh[token].usable(s.now())
}

// SetRotationGrace keeps rotated-away refresh tokens usable for d (0: revoked at once).
func (s *Server) SetRotationGrace(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotationGrace = d
}

// SetLifetime sets expires_in for tokens issued from now on.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// SetRefreshTokenExpiresIn makes responses carry refresh_token_expires_in (0: omit it).
func (s *Server) SetRefreshTokenExpiresIn(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rtExpires = d
}

// SetRotate makes every refresh return a new refresh token and revoke the old one, as
// providers that rotate refresh tokens do (Google does not).
func (s *Server) SetRotate(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = on
}

// SetLatency delays every token response.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// IgnoreRefreshScope makes refreshes ignore the request's scope and answer with every scope
// the refresh token's account has granted its client (the union; a refresh token without a
// consenting account: its own scopes), as a Google that does not narrow would.
func (s *Server) IgnoreRefreshScope(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignoreScope = on
}

// unionLocked is every scope rt's account granted rt's client, rt's own included.
func (s *Server) unionLocked(rt *refreshToken) []string {
	out := slices.Clone(rt.scopes)
	if rt.account == nil {
		return out
	}
	for _, sc := range s.consentLocked().granted[[2]string{rt.account.Email, rt.clientID}] {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// canonicalScope is the form Google names a scope by (the short identity names are aliases).
func canonicalScope(s string) string {
	switch s {
	case "email":
		return "https://www.googleapis.com/auth/userinfo.email"
	case "profile":
		return "https://www.googleapis.com/auth/userinfo.profile"
	}
	return s
}

// FailNext makes the next n token requests fail with f.
func (s *Server) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// Requests is how many token requests presented this refresh token (failed ones included).
func (s *Server) Requests(refreshToken string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[refreshToken]
}

// RequestTimes are the arrival times of token requests presenting this refresh token.
func (s *Server) RequestTimes(refreshToken string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times[refreshToken]...)
}

// TotalRequests counts every token request.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RevokeRequests counts requests to /revoke.
func (s *Server) RevokeRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokes
}

// AccessTokenValid reports whether an access token was issued here and has not expired or been revoked.
func (s *Server) AccessTokenValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.validAccessLocked(token) != nil
}

// CurrentRefreshToken follows rotations: the refresh token issued last among those
// descending from token (token itself when it was never rotated). A client that lost a
// rotated token and retried with the old one makes a branch; the newest branch wins.
func (s *Server) CurrentRefreshToken(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	newest, seq := token, -1
	if rt := s.refresh[token]; rt != nil {
		seq = rt.seq
	}
	for t, rt := range s.refresh {
		if rt.seq > seq && s.descendsLocked(t, token) {
			newest, seq = t, rt.seq
		}
	}
	return newest
}

// descendsLocked: t was issued by rotation from ancestor, directly or not.
func (s *Server) descendsLocked(t, ancestor string) bool {
	for rt := s.refresh[t]; rt != nil && rt.rotatedFrom != ""; rt = s.refresh[rt.rotatedFrom] {
		if rt.rotatedFrom == ancestor {
			return true
		}
	}
	return false
}

// AccessTokenValidity says when an access token issued here was issued and expires; ok is
// false for a token the fake never issued. It ignores revocation (see AccessTokenValid).
func (s *Server) AccessTokenValidity(token string) (issued, expiry time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.access[token]
	if at == nil {
		return time.Time{}, time.Time{}, false
	}
	return at.issued, at.expiry, true
}

// AccessTokenScopes are the scopes an access token issued here carries (nil for a token
// the fake never issued).
func (s *Server) AccessTokenScopes(token string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at := s.access[token]; at != nil {
		return slices.Clone(at.scopes)
	}
	return nil
}

// AccessTokensFor lists the access tokens issued for a refresh token, in issue order.
func (s *Server) AccessTokensFor(refreshToken string) []IssuedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issuedFor[refreshToken])
}

// Exchanges lists every token request so far, in arrival order (copies).
func (s *Server) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Exchange, len(s.exchanges))
	for i, e := range s.exchanges {
		out[i] = *e
	}
	return out
}

// OnNextRotation calls fn once, after the next refresh that rotates the refresh token has
// rotated it and before the answer is sent: a client killed in fn never learns the new
// token, though the fake has issued it (and started the old one's grace).
func (s *Server) OnNextRotation(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRotate = fn
}

// Handler serves the endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/auth", s.auth)
	mux.HandleFunc("/auth/consent", s.consentPost)
	mux.HandleFunc("/token", s.token)
	mux.HandleFunc("/revoke", s.revoke)
	mux.HandleFunc("/tokeninfo", s.tokeninfo)
	mux.HandleFunc("/v1/whoami", s.whoami)
	mux.HandleFunc("POST /v1beta/stream:update", s.streamUpdate)
	mux.HandleFunc("POST /v1beta/stream:verify", s.streamVerify)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "Invalid request body.")
		return
	}
	rt := r.PostForm.Get("refresh_token")

	s.mu.Lock()
	s.total++
	if rt != "" {
		s.requests[rt]++
		s.times[rt] = append(s.times[rt], time.Now())
	}
	ex := &Exchange{RefreshToken: rt, Arrived: time.Now(), Scope: r.PostForm.Get("scope")}
	s.exchanges = append(s.exchanges, ex)
	latency := s.latency
	var fail *Failure
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		fail = &f
	}
	s.mu.Unlock()
	// Handlers below write to rec; answer sends it (deferred calls run last-in first-out,
	// so after any unlock deferred below).
	rec := httptest.NewRecorder()
	defer s.answer(w, r, ex, rec)
	w = rec

	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if fail != nil {
		if fail.Hang {
			<-r.Context().Done()
			return
		}
		if fail.RetryAfter != "" {
			w.Header().Set("Retry-After", fail.RetryAfter)
		}
		body := fail.Body
		if m := bodyAccessToken.FindStringSubmatch(body); m != nil {
			s.mu.Lock()
			s.bodyTokens = append(s.bodyTokens, m[1])
			s.mu.Unlock()
		}
		if body == "" {
			body = fmt.Sprintf(`{"error": "%s", "error_description": "%s"}`, statusCode(fail.Status), http.StatusText(fail.Status))
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(fail.Status)
		_, _ = w.Write([]byte(body))
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if r.PostForm.Get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		// A service account authenticates with its signed assertion, not a client secret.
		s.jwtGrant(w, r)
		return
	}
	clientID := r.PostForm.Get("client_id")
	if clientID == "" {
		oauthError(w, 400, "invalid_request", "Could not determine client ID from request.")
		return
	}
	c := s.clients[clientID]
	switch {
	case c == nil:
		oauthError(w, 401, "invalid_client", "The OAuth client was not found.")
		return
	case c.deleted:
		oauthError(w, 401, "deleted_client", "The OAuth client was deleted.")
		return
	case r.PostForm.Get("client_secret") != c.secret:
		oauthError(w, 401, "invalid_client", "Unauthorized")
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "refresh_token":
		ex.RotatedTo = s.refreshGrant(w, clientID, rt, r.PostForm.Get("scope"))
	case "authorization_code":
		s.codeGrant(w, r, clientID)
	case "":
		oauthError(w, 400, "invalid_request", "Required parameter is missing: grant_type")
	default:
		oauthError(w, 400, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
}

// answer sends what the handler wrote to rec, unless the client has gone, and records the
// outcome; the rotation hook runs first, without the lock.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, ex *Exchange, rec *httptest.ResponseRecorder) {
	s.mu.Lock()
	hook := s.onRotate
	if ex.RotatedTo == "" {
		hook = nil
	} else {
		s.onRotate = nil
	}
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	// The handler returns without an answer only when the client has gone (latency, Hang).
	answered := r.Context().Err() == nil
	if answered {
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ex.Ended, ex.Answered, ex.Status = time.Now(), answered, rec.Code
}

func statusCode(status int) string {
	switch {
	case status == 429:
		return "rate_limit_exceeded"
	case status >= 500:
		return "internal_failure"
	default:
		return "invalid_request"
	}
}

// refreshGrant answers a refresh_token grant; it returns the new refresh token when it rotated one.
// With a scope (RFC 6749 section 6) the token carries exactly those scopes when the refresh
// token was granted them all (compared in canonical forms), else the answer is invalid_scope;
// without one, everything the refresh token was granted.
func (s *Server) refreshGrant(w http.ResponseWriter, clientID, token, scope string) string {
	if token == "" {
		oauthError(w, 400, "invalid_request", "Missing required parameter: refresh_token")
		return ""
	}
	rt := s.refresh[token]
	switch {
	case !rt.usable(s.now()):
		oauthError(w, 400, "invalid_grant", "Token has been expired or revoked.")
		return ""
	case rt.clientID != clientID:
		oauthError(w, 401, "unauthorized_client", "Unauthorized")
		return ""
	}
	scopes := rt.scopes
	switch requested := strings.Fields(scope); {
	case s.ignoreScope:
		scopes = s.unionLocked(rt)
	case len(requested) > 0:
		for _, sc := range requested {
			if !slices.ContainsFunc(rt.scopes, func(g string) bool { return canonicalScope(g) == canonicalScope(sc) }) {
				oauthError(w, 400, "invalid_scope", "Some requested scopes were invalid. {invalid=["+sc+"]}")
				return ""
			}
		}
		scopes = requested
	}
	resp := s.issueLocked(token, clientID, scopes)
	next := ""
	if s.rotate {
		next = "1//fake-" + randomString(24)
		s.addRefreshLocked(next, &refreshToken{clientID: clientID, scopes: rt.scopes, rotatedFrom: token})
		if s.rotationGrace > 0 {
			if rt.expiresAt.IsZero() {
				rt.expiresAt = s.now().Add(s.rotationGrace)
			}
		} else {
			rt.revoked = true
		}
		resp["refresh_token"] = next
	}
	writeJSON(w, 200, resp)
	return next
}

func (s *Server) issueLocked(refresh, clientID string, scopes []string) map[string]any {
	at := "ya29.fake-" + randomString(32)
	now := s.now()
	expiry := now.Add(s.lifetime)
	s.access[at] = &accessToken{refresh: refresh, issued: now, expiry: expiry, scopes: scopes, client: clientID}
	s.issuedFor[refresh] = append(s.issuedFor[refresh], IssuedToken{AccessToken: at, Issued: now, Expiry: expiry})
	resp := map[string]any{
		"access_token": at,
		"expires_in":   int(s.lifetime / time.Second),
		"scope":        strings.Join(scopes, " "),
		"token_type":   "Bearer",
	}
	if s.rtExpires > 0 {
		resp["refresh_token_expires_in"] = int(s.rtExpires / time.Second)
	}
	if id := s.idTokenLocked(s.accountLocked(refresh), clientID, scopes); id != "" {
		resp["id_token"] = id
	}
	return resp
}

// CodeVerifiers lists the PKCE verifiers clients sent with authorization codes, for leak
// checks: a verifier, like the code, must never appear in logs, events or pages.
func (s *Server) CodeVerifiers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.verifiers...)
}

// IssuedCodes lists every authorization code the consent page handed out, for leak checks.
func (s *Server) IssuedCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issuedCodes...)
}

func (s *Server) codeGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	code := r.PostForm.Get("code")
	ac := s.codes[code]
	if code == "" || ac == nil || ac.clientID != clientID {
		oauthError(w, 400, "invalid_grant", "Malformed auth code.")
		return
	}
	if r.PostForm.Get("redirect_uri") != ac.redirectURI {
		oauthError(w, 400, "redirect_uri_mismatch", "Bad Request")
		return
	}
	if v := r.PostForm.Get("code_verifier"); v != "" {
		s.verifiers = append(s.verifiers, v)
	}
	if ac.challenge != "" {
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != ac.challenge {
			oauthError(w, 400, "invalid_grant", "Invalid code verifier.")
			return
		}
	}
	delete(s.codes, code) // codes are single use
	refresh := "1//fake-" + randomString(24)
	s.addRefreshLocked(refresh, &refreshToken{clientID: clientID, scopes: ac.scopes, account: ac.account})
	resp := s.issueLocked(refresh, clientID, ac.scopes)
	if ac.offline {
		resp["refresh_token"] = refresh
	}
	// issueLocked added the id_token of the account that consented (ac.account).
	writeJSON(w, 200, resp)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	_ = r.ParseForm()
	token := r.Form.Get("token")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokes++
	if len(s.revokeErr) > 0 {
		status := s.revokeErr[0]
		s.revokeErr = s.revokeErr[1:]
		oauthError(w, status, statusCode(status), http.StatusText(status))
		return
	}
	if rt := s.refresh[token]; rt != nil && !rt.revoked {
		rt.revoked = true
		writeJSON(w, 200, map[string]string{})
		return
	}
	if at := s.validAccessLocked(token); at != nil {
		// Revoking an access token revokes the refresh token it came from.
		if rt := s.refresh[at.refresh]; rt != nil {
			rt.revoked = true
		}
		writeJSON(w, 200, map[string]string{})
		return
	}
	oauthError(w, 400, "invalid_token", "Token expired or revoked")
}

func (s *Server) validAccessLocked(token string) *accessToken {
	at := s.access[token]
	if at == nil || !s.now().Before(at.expiry) {
		return nil
	}
	if rt := s.refresh[at.refresh]; rt != nil && rt.revoked {
		return nil
	}
	return at
}

func (s *Server) tokeninfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokeninfos++
	at := s.validAccessLocked(r.FormValue("access_token"))
	if at == nil {
		oauthError(w, 400, "invalid_token", "Invalid Value")
		return
	}
	left := int(at.expiry.Sub(s.now()) / time.Second)
	a := s.accountLocked(at.refresh)
	info := map[string]string{
		"azp": at.client, "aud": at.client, "sub": a.Sub,
		"scope": strings.Join(at.scopes, " "), "exp": strconv.FormatInt(at.expiry.Unix(), 10),
		"expires_in": strconv.Itoa(left), "access_type": "offline",
	}
	if hasEmailScope(at.scopes) {
		info["email"], info["email_verified"] = a.Email, "true"
	}
	writeJSON(w, 200, info)
}

// whoami is a protected API: 401 with Google's error shape unless the bearer token is valid.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || s.validAccessLocked(token) == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeJSON(w, 401, map[string]any{"error": map[string]any{"code": 401, "status": "UNAUTHENTICATED",
			"message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}})
		return
	}
	writeJSON(w, 200, map[string]string{"sub": "1000000000000000000001"})
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// bodyAccessToken finds an access_token value in a (possibly malformed) JSON body.
var bodyAccessToken = regexp.MustCompile(`"access_token"\s*:\s*"([^"]*)`)

// IssuedAccessTokens lists every access token handed out, for leak checks: those issued,
// and those in injected failure bodies (which the API never accepts).
func (s *Server) IssuedAccessTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(slices.Collect(maps.Keys(s.access)), s.bodyTokens...)
}

// RefreshTokens lists every refresh token known (registered, rotated or minted), for leak checks.
func (s *Server) RefreshTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.refresh))
}

// ClientSecrets lists every registered client's secret, for leak checks.
func (s *Server) ClientSecrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.clients {
		out = append(out, c.secret)
	}
	return out
}

// ClearFailures drops failures queued with FailNext.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

// FailNextRevokes makes the next n revoke requests answer with status.
func (s *Server) FailNextRevokes(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.revokeErr = append(s.revokeErr, status)
	}
}

// DenyNextConsent makes the next consent answer error=access_denied, as when the user clicks Cancel.
func (s *Server) DenyNextConsent() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = true
}

// GrantOnly makes consent grant only these scopes of those requested (users can untick scopes).
func (s *Server) GrantOnly(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grantOnly = scopes
}

// AuthURL is the authorization (consent) endpoint.
func (s *Server) AuthURL() string { return s.URL() + "/auth" }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Pause stops listening, so requests are refused (the endpoint is down); Resume starts again
// on the same address.
func (s *Server) Pause() {
	_ = s.http.Close()
}

// Resume listens again on the address Pause released.
func (s *Server) Resume() error {
	return s.StartOn(s.listener.Addr().String())
}
