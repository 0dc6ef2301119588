// Package authflow runs Google's OAuth 2.0 authorization-code flow for installed and web
// apps from a command line: a loopback redirect listener, a random state checked on return,
// PKCE S256, access_type=offline and prompt=consent (so a refresh token always comes back),
// and the code exchange, all through golang.org/x/oauth2. It never sends
// include_granted_scopes: the token would then carry every scope the account granted the
// OAuth client before, other namespaces' included when they share the client (issue 28).
package authflow

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"
)

// Options for Run.
type Options struct {
	Config    oauth2.Config // ClientID, ClientSecret, Endpoint and Scopes; RedirectURL is set by Run
	LoginHint string
	// ListenAddress is the loopback address for the redirect (default 127.0.0.1:0, a free port).
	ListenAddress string
	Timeout       time.Duration // how long to wait for the browser to come back
	HTTPClient    *http.Client  // for the code exchange
	// Consent receives the URL the user must open (print it, open a browser).
	Consent func(url string)
}

// ErrAccessDenied is returned when the user declined consent.
var ErrAccessDenied = errors.New("the user declined consent (access_denied); nothing was created")

// Run waits for one redirect, checks it and exchanges its code for tokens.
func Run(ctx context.Context, o Options) (*oauth2.Token, error) {
	addr := o.ListenAddress
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q: the redirect listener must be on a loopback IP", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for the redirect on %s: %w", addr, err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	conf := o.Config
	conf.RedirectURL = "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/callback"

	state := rand.Text() // 128 random bits, URL-safe
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.ApprovalForce, oauth2.S256ChallengeOption(verifier)}
	if o.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", o.LoginHint))
	}
	o.Consent(conf.AuthCodeURL(state, opts...))

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			// Not our redirect (a stray or forged request): refuse it and keep waiting for the
			// browser's, until the timeout; anyone on the machine can reach this port.
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, "<p>grantkeeper: this redirect does not match the sign-in under way (its state differs); it was ignored.</p>")
			return
		}
		var res result
		switch {
		case q.Get("error") == "access_denied":
			res.err = ErrAccessDenied
		case q.Get("error") != "":
			res.err = fmt.Errorf("the authorization server answered %s: %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			res.err = errors.New("the redirect carried no authorization code")
		default:
			res.code = q.Get("code")
		}
		if res.err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "<p>grantkeeper: %s</p>", html.EscapeString(res.err.Error()))
		} else {
			fmt.Fprint(w, "<p>grantkeeper: authorization received. You can close this window and return to the terminal.</p>")
		}
		select {
		case done <- res:
		default:
		}
	})}
	go func() { _ = srv.Serve(l) }()
	// The listener serves one redirect, then closes (deferred Close and Shutdown).
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(timeout):
		return nil, fmt.Errorf("no redirect from the browser within %s; nothing was created", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if res.err != nil {
		return nil, res.err
	}
	if o.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, o.HTTPClient)
	}
	tok, err := conf.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("exchanging the authorization code: the token endpoint answered %s (HTTP %d): %s", re.ErrorCode, re.Response.StatusCode, re.ErrorDescription)
		}
		return nil, fmt.Errorf("exchanging the authorization code: %w", err)
	}
	if tok.RefreshToken == "" {
		return nil, errors.New("the token endpoint returned no refresh token (was access_type=offline honoured?); nothing was created")
	}
	return tok, nil
}
