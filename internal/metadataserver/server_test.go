package metadataserver

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/secretvolume"
)

const tokenPath = "/computeMetadata/v1/instance/service-accounts/default/token"

// start serves a kubelet-style token dir on a free loopback port.
func start(t *testing.T, l Limits) (addr, dir string) {
	t.Helper()
	dir = t.TempDir()
	srv, err := Listen("127.0.0.1:0", &Handler{Dir: &TokenDir{Path: dir}, Config: Config{TokenDir: dir}}, l)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv.Addr(), dir
}

func do(t *testing.T, method, url string, hdr map[string]string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var flavor = map[string]string{"Metadata-Flavor": "Google"}

func TestServerServesRefreshedTokens(t *testing.T) {
	addr, dir := start(t, DefaultLimits())
	resp, body := do(t, "GET", "http://"+addr+tokenPath, flavor, nil)
	if resp.StatusCode != 503 || !strings.Contains(body, "access_token") {
		t.Fatalf("before the Secret is mounted: %d %q, want 503 saying what is missing", resp.StatusCode, body)
	}
	for _, tok := range []string{"ya29.first", "ya29.second"} {
		if err := secretvolume.Write(dir, secretData(tok, time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, "GET", "http://"+addr+tokenPath, flavor, nil)
		var got struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %q: %v", resp.StatusCode, body, err)
		}
		if got.AccessToken != tok || got.ExpiresIn < 3590 || got.ExpiresIn > 3600 {
			t.Errorf("got %+v, want %s with about an hour left", got, tok)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	}
}

// Every response the handler writes carries Metadata-Flavor: Google (Node's gcp-metadata
// rejects any without it), refusals included.
func TestServerHeaderOnEveryResponse(t *testing.T) {
	addr, dir := start(t, DefaultLimits())
	if err := secretvolume.Write(dir, secretData("ya29.hdr", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		body         io.Reader
		status       int
	}{
		{"GET", "/", nil, nil, 200},
		{"GET", tokenPath, flavor, nil, 200},
		{"GET", tokenPath, nil, nil, 403},
		{"GET", tokenPath, map[string]string{"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.1"}, nil, 403},
		{"POST", tokenPath, flavor, strings.NewReader("grant_type=x"), 405},
		{"PUT", "/computeMetadata/v1/project/project-id", flavor, nil, 405},
		{"GET", "/computeMetadata/v1/nothing", flavor, nil, 404},
		{"GET", "/computeMetadata/v1/project/project-id", flavor, nil, 404},
	} {
		resp, body := do(t, tc.method, "http://"+addr+tc.path, tc.hdr, tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
		}
		if got := resp.Header.Get("Metadata-Flavor"); got != "Google" {
			t.Errorf("%s %s: Metadata-Flavor %q", tc.method, tc.path, got)
		}
		if tc.status == 405 && resp.Header.Get("Allow") != "GET" {
			t.Errorf("405 without Allow: GET")
		}
		if tc.status != 200 && strings.Contains(body, "ya29.hdr") {
			t.Errorf("%s %s: a refusal carries the token", tc.method, tc.path)
		}
	}
}

// A huge query is refused before the handler, and the server keeps serving.
func TestServerRefusesHugeRequests(t *testing.T) {
	addr, dir := start(t, DefaultLimits())
	if err := secretvolume.Write(dir, secretData("ya29.big", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, "GET", "http://"+addr+tokenPath+"?scopes="+strings.Repeat("a", 1<<20), flavor, nil)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MiB query: %d, want 431", resp.StatusCode)
	}
	big := map[string]string{"Metadata-Flavor": "Google", "X-Junk": strings.Repeat("b", 64<<10)}
	if resp, _ := do(t, "GET", "http://"+addr+tokenPath, big, nil); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", "http://"+addr+tokenPath, flavor, nil); resp.StatusCode != 200 {
		t.Errorf("after the huge requests: %d", resp.StatusCode)
	}
}

// A client that never finishes its request is cut off, and cannot hold the server: with one
// connection allowed, a well-behaved request queued behind a stalled one is still served.
func TestServerCutsOffSlowClients(t *testing.T) {
	l := DefaultLimits()
	l.ReadHeaderTimeout, l.MaxConns = 300*time.Millisecond, 1
	addr, dir := start(t, l)
	if err := secretvolume.Write(dir, secretData("ya29.slow", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET "+tokenPath+" HTTP/1.1\r\nHost: x\r\nMetadata-Fla"); err != nil {
		t.Fatal(err)
	}

	served := make(chan int, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(mustReq(tokenPath, addr))
		if err != nil {
			served <- -1
			return
		}
		resp.Body.Close()
		served <- resp.StatusCode
	}()

	// The server closes the stalled connection (possibly after a 408): reading reaches EOF
	// well before this deadline.
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(bufio.NewReader(slow))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a stalled client held its connection for %v", time.Since(start))
	}
	select {
	case code := <-served:
		if code != 200 {
			t.Fatalf("the queued request got %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the queued request was never served")
	}
}

// MaxConns bounds the connections served at once: with one allowed, a request arriving
// while another client holds the connection mid-request waits, and is served once that
// client goes.
func TestServerMaxConns(t *testing.T) {
	l := DefaultLimits()
	l.ReadHeaderTimeout, l.MaxConns = time.Minute, 1 // the held connection is not cut off
	addr, dir := start(t, l)
	if err := secretvolume.Write(dir, secretData("ya29.held", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	// (No request before this one: a kept-alive idle connection would hold the only slot.)
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := io.WriteString(held, "GET "+tokenPath+" HTTP/1.1\r\nHost: x\r\nMetadata-Fla"); err != nil {
		t.Fatal(err)
	}
	served := make(chan int, 1)
	go func() {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Do(mustReq(tokenPath, addr))
		if err != nil {
			served <- -1
			return
		}
		resp.Body.Close()
		served <- resp.StatusCode
	}()
	// Waiting is the behaviour under test: a second connection served within this window
	// means no limit.
	select {
	case code := <-served:
		t.Fatalf("a second request was answered (%d) while the only connection allowed was held", code)
	case <-time.After(time.Second):
	}
	held.Close()
	select {
	case code := <-served:
		if code != 200 {
			t.Fatalf("the waiting request got %d once the held connection closed", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting request was not served after the held connection closed")
	}
}

func mustReq(path, addr string) *http.Request {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Header.Set("Metadata-Flavor", "Google")
	return req
}

func TestListenOnlyOnLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8988": true,
		"[::1]:8988":     true,
		":8988":          false,
		"0.0.0.0:8988":   false,
		"10.1.2.3:8988":  false,
		"localhost:8988": false, // a name could resolve anywhere
		"127.0.0.1":      false,
	} {
		if err := CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
}
