// Package libraries runs Google's real client libraries, unmodified, against the
// metadata-server sidecar process on loopback while the token directory is refreshed the way
// the kubelet updates a Secret volume: Go (examples/adc with google.FindDefaultCredentials,
// and cloud.google.com/go/compute/metadata), Python (google.auth.default() from Debian's
// python3-google-auth) and Node (google-auth-library from npm). Every call they make to the
// fake Google API must succeed across at least two refreshes of short-lived tokens.
//
// The requests each library makes to the sidecar are compared with the recordings in
// internal/metadataserver/testdata/requests, which the sidecar's HTTP tests replay; -update
// rewrites them.
package libraries

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/test/framework/clientlibs"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
	"github.com/grantkeeper/grantkeeper/test/framework/secretvolume"
)

var update = flag.Bool("update", false, "rewrite internal/metadataserver/testdata/requests from what the libraries sent")

const (
	lifetime    = 12 * time.Second // of each access token
	refreshLeft = 5 * time.Second  // the stand-in controller publishes a new token this long before expiry
	wantTokens  = 3                // distinct tokens each client must use: two refreshes
	interval    = "500ms"          // between a client's API calls
	email       = "ada@example.com"
	project     = "grantkeeper-test"
	nodeLibrary = "google-auth-library@10.9.1"
)

var scopes = []string{"https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/drive.readonly"}

// bins holds the sidecar and the example program, built once.
var bins string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "gklibs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins = dir
	code := func() int {
		root, err := k8sbin.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for out, pkg := range map[string]string{"metadata-server": "./cmd/metadata-server", "adc": "./examples/adc"} {
			if err := gobuild.Build(root, pkg, filepath.Join(dir, out)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

// apiLog records, per client, the token and status of every call to the protected API.
type apiLog struct {
	mu    sync.Mutex
	calls map[string][]apiCall
}

type apiCall struct {
	token  string
	status int
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }

func (l *apiLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/whoami" {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		l.mu.Lock()
		defer l.mu.Unlock()
		client := r.URL.Query().Get("client")
		l.calls[client] = append(l.calls[client], apiCall{tok, sw.status})
	})
}

// summary: calls, calls not answered 200, distinct tokens.
func (l *apiLog) summary(client string) (calls, failed, tokens int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	for _, c := range l.calls[client] {
		if c.status != 200 {
			failed++
		}
		seen[c.token] = true
	}
	return len(l.calls[client]), failed, len(seen)
}

// mdProxy sits between one library and the sidecar and records the requests it makes. It
// adds nothing (no X-Forwarded-For) and passes responses through untouched.
type mdProxy struct {
	url string
	mu  sync.Mutex
	got []string // "GET /path?query", email replaced by {email}, in order of first use
	bad []string // requests without the Metadata-Flavor header (other than the root)
}

func newProxy(t *testing.T, sidecar string) *mdProxy {
	p := &mdProxy{}
	target, _ := url.Parse("http://" + sidecar)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := r.Method + " " + strings.ReplaceAll(r.URL.RequestURI(), email, "{email}")
		p.mu.Lock()
		if !slices.Contains(p.got, line) {
			p.got = append(p.got, line)
		}
		if r.URL.Path != "/" && r.Header.Get("Metadata-Flavor") != "Google" {
			p.bad = append(p.bad, line)
		}
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *mdProxy) requests() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got), slices.Clone(p.bad)
}

// controller stands in for grantkeeper's controller: it refreshes the grant at the fake
// Google token endpoint and publishes each token in dir as the kubelet would, before the
// previous one expires. It returns the expiry of the last token it published when ctx ends.
func controller(ctx context.Context, t *testing.T, api, dir, clientID, secret, rt string, published chan<- time.Time) {
	for {
		start := time.Now()
		resp, err := http.PostForm(api+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}, "client_secret": {secret}})
		if err != nil {
			t.Errorf("token request: %v", err)
			return
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil || tok.AccessToken == "" {
			t.Errorf("token response %d: %v", resp.StatusCode, err)
			return
		}
		expiry := start.Add(time.Duration(tok.ExpiresIn) * time.Second)
		// Exactly what the controller writes (derivedsecret.Data), as the kubelet writes it.
		if err := secretvolume.Write(dir, derivedsecret.Data(derivedsecret.Token{AccessToken: tok.AccessToken, Expiry: expiry, RefreshedAt: start})); err != nil {
			t.Errorf("publishing: %v", err)
			return
		}
		published <- expiry.Truncate(time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(expiry.Add(-refreshLeft))):
		}
	}
}

// startSidecar runs the metadata-server binary on a free loopback port and returns its address.
func startSidecar(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bins, "metadata-server"), "--listen-address", "127.0.0.1:0", "--token-dir", dir,
		"--project-id", project, "--email", email, "--scopes", strings.Join(scopes, ","))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg=serving address=(127\.0\.0\.1:\d+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			t.Logf("sidecar: %s", sc.Text())
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("the sidecar did not report its address")
		return ""
	}
}

// clientEnv is a Pod's environment as the README documents it for the sidecar at addr: no
// GOOGLE_APPLICATION_CREDENTIALS, and a HOME without gcloud's well-known file.
func clientEnv(addr, home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOGLE_APPLICATION_CREDENTIALS", "HOME", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST", "GCE_METADATA_ROOT", "GCE_METADATA_IP", "METADATA_SERVER_DETECTION", "GOOGLE_CLOUD_PROJECT":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "GCE_METADATA_HOST="+addr, "GCE_METADATA_ROOT="+addr, "GCE_METADATA_IP="+addr, "METADATA_SERVER_DETECTION=assume-present")
	return append(env, extra...)
}

const pythonClient = `
import os, sys, time
import google.auth
from google.auth.transport.requests import AuthorizedSession
creds, project = google.auth.default()
print("credentials %s project=%s" % (type(creds).__module__, project), flush=True)
session = AuthorizedSession(creds)
while True:
    try:
        r = session.get(os.environ["API_URL"], timeout=10)
        print("status=%d" % r.status_code, flush=True)
    except Exception as e:
        print("error=%r" % (e,), flush=True)
    time.sleep(float(os.environ["INTERVAL_SECONDS"]))
`

const nodeClient = `
const {GoogleAuth} = require('google-auth-library');
(async () => {
  const auth = new GoogleAuth();
  for (;;) {
    try {
      const token = await auth.getAccessToken();
      const r = await fetch(process.env.API_URL, {headers: {Authorization: 'Bearer ' + token}});
      console.log('status=' + r.status);
    } catch (e) {
      console.log('error=' + JSON.stringify(String(e && e.message)));
    }
    await new Promise(res => setTimeout(res, Number(process.env.INTERVAL_SECONDS) * 1000));
  }
})();
`

// client is one library's program.
type client struct {
	name  string // also the recordings' file name
	ready func(t *testing.T, work string) string
	cmd   func(work string) *exec.Cmd
}

func TestLibrariesAcrossRefreshes(t *testing.T) {
	work := t.TempDir()
	clients := []client{
		{"go", func(*testing.T, string) string { return "" }, func(string) *exec.Cmd {
			// Asking for a scope exercises the sidecar's scopes= check with the real library.
			cmd := exec.Command(filepath.Join(bins, "adc"))
			cmd.Env = []string{"SCOPES=" + scopes[0]}
			return cmd
		}},
		{"python", func(t *testing.T, _ string) string {
			reason := clientlibs.PythonGoogleAuth(logWriter{t})
			if reason == "" {
				t.Logf("python3-google-auth %s", clientlibs.PythonGoogleAuthVersion())
			}
			return reason
		}, func(work string) *exec.Cmd {
			script := filepath.Join(work, "client.py")
			_ = os.WriteFile(script, []byte(pythonClient), 0o600)
			return exec.Command(clientlibs.Python, script)
		}},
		{"node", func(t *testing.T, work string) string {
			return clientlibs.NodeModule(work, nodeLibrary, logWriter{t})
		}, func(work string) *exec.Cmd {
			script := filepath.Join(work, "client.js")
			_ = os.WriteFile(script, []byte(nodeClient), 0o600)
			cmd := exec.Command("node", script)
			cmd.Dir = work
			return cmd
		}},
	}

	// Fake Google with short-lived tokens, and a log of every API call.
	fg := fakegoogle.New()
	fg.SetLifetime(lifetime)
	fg.AddClient("client-1.apps.googleusercontent.com", "client-secret-1")
	rt := fg.NewRefreshToken("client-1.apps.googleusercontent.com", scopes...)
	calls := &apiLog{calls: map[string][]apiCall{}}
	api := httptest.NewServer(calls.wrap(fg.Handler()))
	defer api.Close()

	tokenDir := filepath.Join(work, "token")
	sidecar := startSidecar(t, tokenDir)

	// Before any token: the probe says why, and the token endpoint answers 503.
	if out, err := exec.Command(filepath.Join(bins, "metadata-server"), "--check", "--listen-address", sidecar).CombinedOutput(); err == nil || !strings.Contains(string(out), "503") {
		t.Errorf("--check before the Secret exists: %v %s; want a failure saying 503", err, out)
	}

	ctx, stopController := context.WithCancel(context.Background())
	defer stopController()
	published := make(chan time.Time, 100)
	controllerDone := make(chan struct{})
	go func() {
		defer close(controllerDone)
		controller(ctx, t, api.URL, tokenDir, "client-1.apps.googleusercontent.com", "client-secret-1", rt, published)
	}()
	lastExpiry := <-published
	if out, err := exec.Command(filepath.Join(bins, "metadata-server"), "--check", "--listen-address", sidecar).CombinedOutput(); err != nil {
		t.Errorf("--check with a token: %v %s", err, out)
	}

	t.Run("go-metadata", func(t *testing.T) { goMetadata(t, newProxy(t, sidecar).url) })

	t.Run("clients", func(t *testing.T) {
		for _, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(work, c.name)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if reason := c.ready(t, dir); reason != "" {
					if os.Getenv("CI") != "" {
						t.Fatalf("cannot run the %s client library under CI: %s", c.name, reason)
					}
					t.Skipf("SKIPPING the %s client library: %s", c.name, reason)
				}
				proxy := newProxy(t, sidecar)
				runClient(t, c, dir, proxy, api.URL, calls)
				checkRecorded(t, c.name, proxy)
			})
		}
	})

	// With no new token, the sidecar stops serving once the last one expires: 503, and the
	// probe fails.
	stopController()
	<-controllerDone
	for len(published) > 0 {
		lastExpiry = <-published
	}
	// Poll the sidecar until it refuses, with a deadline just past the token's expiry.
	pollErr := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Until(lastExpiry.Add(2*time.Second)), true, func(context.Context) (bool, error) {
		status, left := tokenStatus(t, sidecar)
		if status == http.StatusServiceUnavailable {
			if now := time.Now(); now.Before(lastExpiry.Add(-time.Second)) {
				t.Errorf("503 at %v, before the token's expiry %v", now, lastExpiry)
			}
			return true, nil
		}
		if status != 200 || time.Now().Add(time.Duration(left)*time.Second).After(lastExpiry.Add(time.Second)) {
			t.Fatalf("status %d with expires_in %d at %v; the token expires at %v", status, left, time.Now(), lastExpiry)
		}
		return false, nil
	})
	if pollErr != nil {
		t.Fatalf("still serving a token at %v; it expired at %v", time.Now(), lastExpiry)
	}
	if out, err := exec.Command(filepath.Join(bins, "metadata-server"), "--check", "--listen-address", sidecar).CombinedOutput(); err == nil || !strings.Contains(string(out), "no newer one has been published") {
		t.Errorf("--check after expiry: %v %s; want a failure saying the token expired", err, out)
	}
}

func tokenStatus(t *testing.T, addr string) (int, int) {
	req, _ := http.NewRequest("GET", "http://"+addr+"/computeMetadata/v1/instance/service-accounts/default/token", nil)
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		ExpiresIn int `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	return resp.StatusCode, tok.ExpiresIn
}

// runClient runs one library's program until it has used wantTokens distinct tokens (so it
// went through two refreshes), then checks every API call it made succeeded.
func runClient(t *testing.T, c client, dir string, proxy *mdProxy, api string, calls *apiLog) {
	cmd := c.cmd(dir)
	cmd.Env = clientEnv(proxy.url, dir, append(cmd.Env, "API_URL="+api+"/v1/whoami?client="+c.name, "INTERVAL="+interval, "INTERVAL_SECONDS=0.5")...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var linesMu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			linesMu.Lock()
			lines = append(lines, sc.Text())
			linesMu.Unlock()
		}
	}()
	exited := make(chan error, 1)
	go func() { <-readDone; exited <- cmd.Wait() }()

	// Two refreshes come within 2*(lifetime-refreshLeft) of the first token; allow as much again.
	deadline := time.After(4 * (lifetime - refreshLeft))
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-exited:
			t.Fatalf("the %s client exited: %v\nstdout: %s\nstderr: %s", c.name, err, strings.Join(lines, "\n"), stderr.String())
		case <-deadline:
			break wait
		case <-tick.C:
			if _, _, tokens := calls.summary(c.name); tokens >= wantTokens {
				break wait
			}
		}
	}
	_ = cmd.Process.Kill()
	<-exited

	n, failed, tokens := calls.summary(c.name)
	t.Logf("%s: %d API calls, %d not 200, %d distinct tokens", c.name, n, failed, tokens)
	if tokens < wantTokens {
		t.Errorf("the %s client used %d distinct tokens, want %d (two refreshes)\nstdout: %s\nstderr: %s", c.name, tokens, wantTokens, strings.Join(lines, "\n"), stderr.String())
	}
	if failed > 0 || n == 0 {
		t.Errorf("the %s client: %d of %d API calls failed (401s after a refresh?)", c.name, failed, n)
	}
	linesMu.Lock()
	defer linesMu.Unlock()
	for _, l := range lines {
		if strings.Contains(l, "error=") || (strings.Contains(l, "status=") && !strings.Contains(l, "status=200")) {
			t.Errorf("the %s client logged %q", c.name, l)
		}
	}
}

// checkRecorded compares what a library asked of the sidecar with the recording the HTTP
// tests replay.
func checkRecorded(t *testing.T, name string, p *mdProxy) {
	got, bad := p.requests()
	if len(bad) > 0 {
		t.Errorf("%s sent requests without Metadata-Flavor: %v", name, bad)
	}
	path := filepath.Join("..", "..", "internal", "metadataserver", "testdata", "requests", name+".txt")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var header, want []string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
			header = append(header, l)
		case strings.TrimSpace(l) != "":
			want = append(want, l)
		}
	}
	if slices.Equal(sorted(got), sorted(want)) {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(append(header, got...), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
		return
	}
	t.Errorf("%s asked the sidecar for\n  %s\nbut %s records\n  %s\n(go test ./test/libraries -update rewrites the recording; then check that the sidecar's tests still pass)",
		name, strings.Join(got, "\n  "), path, strings.Join(want, "\n  "))
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// goMetadata checks cloud.google.com/go/compute/metadata's own calls against the sidecar.
func goMetadata(t *testing.T, addr string) {
	t.Setenv("GCE_METADATA_HOST", addr)
	ctx := context.Background()
	if !metadata.OnGCE() {
		t.Fatal("metadata.OnGCE() is false with GCE_METADATA_HOST set")
	}
	c := metadata.NewClient(nil)
	if got, err := c.ProjectIDWithContext(ctx); err != nil || got != project {
		t.Errorf("ProjectID = %q, %v", got, err)
	}
	if got, err := c.EmailWithContext(ctx, ""); err != nil || got != email {
		t.Errorf("Email = %q, %v", got, err)
	}
	if got, err := c.ScopesWithContext(ctx, ""); err != nil || !slices.Equal(got, scopes) {
		t.Errorf("Scopes = %q, %v", got, err)
	}
	if got, err := c.GetWithContext(ctx, "universe/universe-domain"); err != nil || got != "googleapis.com" {
		t.Errorf("universe-domain = %q, %v", got, err)
	}
	if _, err := c.NumericProjectIDWithContext(ctx); !isNotDefined(err) {
		t.Errorf("NumericProjectID without the flag: %v, want NotDefinedError (404)", err)
	}
	if _, err := c.GetWithContext(ctx, "instance/service-accounts/default/identity?audience=x"); !isNotDefined(err) {
		t.Errorf("identity: %v, want NotDefinedError (404)", err)
	}
}

func isNotDefined(err error) bool {
	_, ok := err.(metadata.NotDefinedError)
	return ok
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = logWriter{}
