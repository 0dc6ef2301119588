// Package hydra runs Ory Hydra v2, a real OAuth 2.0 / OpenID Connect server nobody on this
// team wrote, for the provider tests: `make hydra` builds it from the Go module proxy
// (hack/hydra.sh) into bin/hydra-<version>; Start runs it with in-memory storage on free
// loopback ports, with a login and consent app (LoginConsent) that accepts through Hydra's
// admin API, and Admin creates clients and revokes consents and tokens.
package hydra

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
	"github.com/grantkeeper/grantkeeper/test/framework/listencheck"
)

// Find returns $HYDRA when set (the Makefile exports it), else the newest bin/hydra-* in the
// repository. A missing binary is an error, never a skip: make test builds it.
func Find() (string, error) {
	if h := os.Getenv("HYDRA"); h != "" {
		if _, err := os.Stat(h); err != nil {
			return "", fmt.Errorf("HYDRA=%s: %w (make hydra builds it)", h, err)
		}
		return h, nil
	}
	root, err := k8sbin.RepoRoot()
	if err != nil {
		return "", err
	}
	found, _ := filepath.Glob(filepath.Join(root, "bin", "hydra-v*"))
	if len(found) == 0 {
		return "", fmt.Errorf("no Hydra in %s: run 'make hydra' (make test builds it)", filepath.Join(root, "bin"))
	}
	sort.Strings(found)
	return found[len(found)-1], nil
}

// Options configure a Hydra server. Zero values are Hydra's defaults, except where noted.
type Options struct {
	// AccessTokenTTL is the lifetime of access tokens (ttl.access_token). Default 1h.
	AccessTokenTTL time.Duration
	// RefreshTokenGracePeriod lets a rotated-out refresh token be used again for this long
	// (oauth2.grant.refresh_token.rotation_grace_period). Default 0: reuse is theft and
	// revokes the token's family.
	RefreshTokenGracePeriod time.Duration
	// StartTimeout bounds the wait for Hydra to become ready. Default 60s.
	StartTimeout time.Duration
}

// Server is a running Hydra.
type Server struct {
	// Issuer is the issuer URL (http://127.0.0.1:<public port>), discovery under it.
	Issuer string
	// PublicURL and AdminURL are the public and admin APIs' base URLs (no trailing slash).
	PublicURL, AdminURL string
	// Admin calls Hydra's admin API.
	Admin *Admin
	// App is the login and consent app Hydra delegates to.
	App *LoginConsent

	cmd     *exec.Cmd
	exited  chan struct{}
	log     *syncBuffer
	stopped sync.Once
}

// TokenURL, AuthURL and RevokeURL are Hydra's endpoints (as its discovery document says).
func (s *Server) TokenURL() string  { return s.PublicURL + "/oauth2/token" }
func (s *Server) AuthURL() string   { return s.PublicURL + "/oauth2/auth" }
func (s *Server) RevokeURL() string { return s.PublicURL + "/oauth2/revoke" }

// New starts Hydra for one test and stops it when the test ends; failure to start fails the test.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts Hydra (use New in a test; Start from TestMain, with Stop when done).
func Start(o Options) (*Server, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	app := newLoginConsent()
	ok := false
	defer func() {
		if !ok {
			app.close()
		}
	}()
	// A port picked free may be taken before Hydra binds it (listencheck): start again on
	// other ports when Hydra exits or another process answers there.
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		s, err := start(bin, o, app)
		if err == nil {
			ok = true
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port taken")

func start(bin string, o Options, app *LoginConsent) (*Server, error) {
	public, err := listencheck.FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := listencheck.FreePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	s := &Server{
		Issuer:    fmt.Sprintf("http://127.0.0.1:%d", public),
		PublicURL: fmt.Sprintf("http://127.0.0.1:%d", public),
		AdminURL:  fmt.Sprintf("http://127.0.0.1:%d", admin),
		App:       app,
		exited:    make(chan struct{}),
		log:       &syncBuffer{max: 1 << 20},
	}
	s.Admin = &Admin{URL: s.AdminURL, HTTP: &http.Client{Timeout: 10 * time.Second}}
	app.admin = s.Admin

	env := []string{
		// A clean environment: a DSN or SECRETS_* of the caller's must not reach Hydra.
		"PATH=" + os.Getenv("PATH"),
		"DSN=memory",
		"SERVE_PUBLIC_HOST=127.0.0.1",
		"SERVE_PUBLIC_PORT=" + strconv.Itoa(public),
		"SERVE_ADMIN_HOST=127.0.0.1",
		"SERVE_ADMIN_PORT=" + strconv.Itoa(admin),
		"URLS_SELF_ISSUER=" + s.Issuer,
		"URLS_LOGIN=" + app.URL + "/login",
		"URLS_CONSENT=" + app.URL + "/consent",
		"URLS_ERROR=" + app.URL + "/error",
		"SECRETS_SYSTEM=" + hex.EncodeToString(secret),
		// bcrypt's cheapest cost: client secrets are checked on every token request, and
		// the default cost would make each one take tens of milliseconds of CPU.
		"OAUTH2_HASHERS_ALGORITHM=bcrypt",
		"OAUTH2_HASHERS_BCRYPT_COST=4",
		"LOG_LEVEL=warn",
		"LOG_LEAK_SENSITIVE_VALUES=false",
	}
	if o.AccessTokenTTL > 0 {
		env = append(env, "TTL_ACCESS_TOKEN="+o.AccessTokenTTL.String())
	}
	if o.RefreshTokenGracePeriod > 0 {
		env = append(env, "OAUTH2_GRANT_REFRESH_TOKEN_ROTATION_GRACE_PERIOD="+o.RefreshTokenGracePeriod.String())
	}
	// --dev allows plain HTTP on loopback; --sqa-opt-out: no telemetry leaves the machine.
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Killed with the test process should it die without Stop (a timeout, a panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(o.StartTimeout, public, admin); err != nil {
		s.stopProcess()
		return nil, err
	}
	return s, nil
}

// waitReady polls both APIs' /health/ready until they answer 200 from our process.
func (s *Server) waitReady(timeout time.Duration, public, admin int) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.exited:
			tail := s.log.String()
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, lastLines(tail, 5))
			}
			return fmt.Errorf("hydra exited before it was ready:\n%s", lastLines(tail, 20))
		case <-ctx.Done():
			return fmt.Errorf("hydra not ready within %s:\n%s", timeout, lastLines(s.log.String(), 20))
		case <-tick.C:
		}
		if ready(ctx, hc, s.PublicURL) && ready(ctx, hc, s.AdminURL) {
			pid := s.cmd.Process.Pid
			if !listencheck.ListensOn(pid, public) || !listencheck.ListensOn(pid, admin) {
				return fmt.Errorf("%w: another process answers on %d or %d", errPortTaken, public, admin)
			}
			return nil
		}
	}
}

func ready(ctx context.Context, hc *http.Client, base string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/ready", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop stops the Hydra process this Server started (and no other), then the login app.
func (s *Server) Stop() {
	s.stopped.Do(func() {
		s.stopProcess()
		s.App.close()
	})
}

// stopProcess ends the process by its own handle: SIGTERM, then SIGKILL after 10 s.
func (s *Server) stopProcess() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Exited is closed when the Hydra process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Log is what Hydra has written so far (the last MiB; level warn and above).
func (s *Server) Log() string { return s.log.String() }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// syncBuffer keeps the last max bytes written, safe for the process's two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if len(b.b) > b.max {
		b.b = b.b[len(b.b)-b.max:]
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
