package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/oauthtoken"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
	"github.com/grantkeeper/grantkeeper/test/framework/hydra"
)

// issuance is one refresh request through the proxy in front of Hydra: the token it
// presented, and, when Hydra's answer passed the proxy on its way to the manager, when and
// the rotated token in it.
type issuance struct {
	old, new          string
	started, answered time.Time
}

// rotationLog records, through a reverse proxy in front of Hydra's token endpoint, every
// refresh token Hydra issued in exchange for which, and signals each answer.
type rotationLog struct {
	mu       sync.Mutex
	issued   []issuance
	answered chan struct{}
}

func (l *rotationLog) handler(target string) http.Handler {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		i, ok := resp.Request.Context().Value(oldTokenKey{}).(int)
		if resp.StatusCode != http.StatusOK || !ok {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var tok struct {
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(body, &tok) == nil && tok.RefreshToken != "" {
			l.mu.Lock()
			l.issued[i].new, l.issued[i].answered = tok.RefreshToken, time.Now()
			l.mu.Unlock()
			select {
			case l.answered <- struct{}{}:
			default:
			}
		}
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
			r.Body = io.NopCloser(bytes.NewReader(body))
			if q, err := url.ParseQuery(string(body)); err == nil && q.Get("grant_type") == "refresh_token" {
				l.mu.Lock()
				l.issued = append(l.issued, issuance{old: q.Get("refresh_token"), started: time.Now()})
				i := len(l.issued) - 1
				l.mu.Unlock()
				r = r.WithContext(context.WithValue(r.Context(), oldTokenKey{}, i))
			}
		}
		rp.ServeHTTP(w, r)
	})
}

type oldTokenKey struct{}

func (l *rotationLog) snapshot() []issuance {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.issued)
}

// secretHistory records every value the refresh-token Secrets held, with when the API server
// showed it (a watch), keyed by token.
type secretHistory struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (h *secretHistory) add(tok string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.seen[tok]; !ok {
		h.seen[tok] = at
	}
}

func (h *secretHistory) when(tok string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.seen[tok]
	return t, ok
}

// TestOAuthGrantKilledDuringRotations (issue 30): Ory Hydra rotates the refresh token on every
// refresh and treats reuse of a rotated-out one as theft, revoking the whole family. The
// manager is SIGKILLed 20 times while six OAuthGrants refresh every two seconds: at random
// points, and right after Hydra's answer left for the manager (inside the window between the
// provider's answer and the acknowledged write-back of the rotated token, where a crash can
// lose it). Afterwards every grant whose rotated tokens all reached its Secret keeps working,
// and exactly the grants that lost one report Revoked/InvalidGrant (Hydra revoked the family
// when the next manager presented the older token): never a silent failure. The window is
// measured: from Hydra's answer passing the proxy to the API server showing the new token.
func TestOAuthGrantKilledDuringRotations(t *testing.T) {
	idp, err := hydra.Start(hydra.Options{AccessTokenTTL: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Stop()
	rotations := &rotationLog{answered: make(chan struct{}, 1)}
	proxy := httptest.NewServer(rotations.handler(idp.PublicURL))
	defer proxy.Close()
	ctx := context.Background()
	ns := namespace(t, "oagcrash")

	const redirectURI = "http://127.0.0.1:9/callback"
	grants := []string{"h1", "h2", "h3", "h4", "h5", "h6"}
	first := map[string]string{}
	var manifest strings.Builder
	for _, name := range grants {
		c, err := idp.Admin.CreateClient(ctx, hydra.ClientSpec{GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			RedirectURIs: []string{redirectURI}, Scope: "openid offline_access", TokenEndpointAuthMethod: "client_secret_basic"})
		if err != nil {
			t.Fatal(err)
		}
		verifier := oauth2.GenerateVerifier()
		q, err := idp.Authorize(ctx, hydra.AuthRequest{ClientID: c.ID, RedirectURI: redirectURI, Scopes: []string{"openid", "offline_access"},
			State: "state-" + name + "-0123456789", CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), LoginHint: name + "@example.com"})
		if err != nil || q.Get("code") == "" {
			t.Fatalf("authorizing at Hydra: %v %v", err, q)
		}
		e := &oauthtoken.Endpoint{TokenURL: idp.TokenURL(), HTTP: tokenclient.NewHTTPClient(10 * time.Second)}
		tok, err := e.Exchange(ctx, oauthtoken.Client{ID: c.ID, Secret: c.Secret}, q.Get("code"), redirectURI, verifier, oauthtoken.Params{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		first[name] = tok.RefreshToken
		fmt.Fprintf(&manifest, `apiVersion: v1
kind: Secret
metadata: {name: %[1]s-client}
stringData: {client_secret: %[3]q}
---
apiVersion: v1
kind: Secret
metadata: {name: %[1]s-rt}
stringData: {refresh_token: %[4]q}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: OAuthClient
metadata: {name: %[1]s}
spec:
  clientID: %[2]q
  endpoints: {tokenURL: %[5]q, revocationURL: %[6]q}
  clientSecretRef: {name: %[1]s-client}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: OAuthGrant
metadata: {name: %[1]s}
spec:
  clientRef: {name: %[1]s}
  refreshTokenSecretRef: {name: %[1]s-rt}
  scopes: [openid, offline_access]
  refreshBefore: 2s
---
`, name, c.ID, c.Secret, tok.RefreshToken, proxy.URL+"/oauth2/token", proxy.URL+"/oauth2/revoke")
	}

	// Every value the refresh-token Secrets take, as the API server shows it.
	cfg, err := clientcmd.BuildConfigFromFlags("", stack.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	history := &secretHistory{seen: map[string]time.Time{}}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w, err := cs.CoreV1().Secrets(ns).Watch(wctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok && strings.HasSuffix(s.Name, "-rt") {
				history.add(string(s.Data["refresh_token"]), time.Now())
			}
		}
	}()

	// The stack's manager, restarted with loopback providers allowed (Hydra is on 127.0.0.1)
	// and without leader election (each restart would wait out the killed leader's Lease).
	stack.StopManager()
	defer func() {
		stack.StopManager()
		if err := stack.StartManager(); err != nil {
			t.Error(err)
		}
	}()
	flags := []string{"--leader-elect=false", "--allow-loopback-providers"}
	if err := stack.StartManager(flags...); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectlStdin(t, manifest.String(), "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, name := range grants {
		kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "oag/"+name)
	}

	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewPCG(uint64(seed), 0))
	var kills []time.Time
	for i := range 20 {
		// The previous manager is dead: a kill cannot land inside a write-back it did not start.
		select {
		case <-rotations.answered:
		default:
		}
		if i > 0 {
			if err := stack.StartManager(flags...); err != nil {
				t.Fatal(err)
			}
		}
		if i%2 == 0 {
			<-time.After(time.Duration(300+rnd.IntN(2200)) * time.Millisecond) // anywhere, startup included
		} else {
			select {
			case <-rotations.answered:
				// Around the window: the answer is on its way, the write-back just starting,
				// under way or done.
				<-time.After(time.Duration(rnd.IntN(40)) * time.Millisecond)
			case <-time.After(10 * time.Second):
				// Every grant was revoked by earlier kills: nothing rotates any more.
				t.Logf("kill %d: no rotation within 10 s (every grant revoked?); killing anyway", i+1)
			}
		}
		kills = append(kills, time.Now())
		stack.KillManager()
	}

	// A manager that stays: every grant either refreshes on or turns Revoked.
	restarted := time.Now()
	if err := stack.StartManager(flags...); err != nil {
		t.Fatal(err)
	}
	state := func(name string) (revoked bool, lastRefresh time.Time) {
		out := kubectl(t, "get", "oag", "-n", ns, name, "-o", `jsonpath={.status.conditions[?(@.type=="Revoked")].reason}/{.status.lastRefreshTime}`)
		reason, last, _ := strings.Cut(out, "/")
		ts, _ := time.Parse(time.RFC3339, last)
		return reason == oauthv1alpha1.ReasonInvalidGrant, ts
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		for _, name := range grants {
			if revoked, last := state(name); !revoked && !last.After(restarted.Add(3*time.Second)) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("grants neither refreshing nor Revoked a minute after the kills")
	}
	stack.StopManager() // graceful: a write-back in progress finishes; no rotation after this
	stopWatch()

	// Per grant: the rotations of its chain, and whether each new token reached its Secret.
	issued := rotations.snapshot()
	var windows []time.Duration
	for _, name := range grants {
		chain := map[string]bool{first[name]: true}
		lost, cutOff := 0, 0
		for _, is := range issued {
			switch {
			case !chain[is.old]:
				continue
			case is.new == "":
				// No answer reached the proxy: a kill while the request was in flight. Hydra
				// may have rotated the token all the same; its answer never reached anyone.
				if slices.ContainsFunc(kills, func(k time.Time) bool { return !k.Before(is.started) && k.Sub(is.started) < 30*time.Second }) {
					cutOff++
				}
				continue
			}
			chain[is.new] = true
			if at, ok := history.when(is.new); ok {
				windows = append(windows, at.Sub(is.answered))
			} else {
				lost++
			}
		}
		revoked, _ := state(name)
		stalled := kubectl(t, "get", "oag", "-n", ns, name, "-o", `jsonpath={.status.conditions[?(@.type=="Stalled")].status}`)
		switch {
		case lost > 0 && !revoked:
			t.Errorf("%s: %d rotated refresh token(s) never reached its Secret, yet it is not Revoked/InvalidGrant: a silent failure", name, lost)
		case lost == 0 && cutOff == 0 && revoked:
			t.Errorf("%s: every rotated token reached its Secret and no kill cut a request off, yet Hydra revoked it: a token was lost elsewhere", name)
		case revoked && stalled != "True":
			t.Errorf("%s: Revoked but Stalled=%q: it would keep trying", name, stalled)
		}
		t.Logf("%s: %d rotations, %d answered but lost to a kill, %d requests cut off by a kill, revoked=%v", name, len(chain)-1, lost, cutOff, revoked)
	}
	slices.Sort(windows)
	if len(windows) < 10 {
		t.Fatalf("only %d rotations reached a Secret across 20 kills: the test did not exercise rotation", len(windows))
	}
	t.Logf("20 SIGKILLs (seed %d); the window from Hydra's answer to the new token in the API server, over %d rotations: p50 %s, p90 %s, max %s",
		seed, len(windows), windows[len(windows)/2].Round(time.Millisecond), windows[len(windows)*9/10].Round(time.Millisecond), windows[len(windows)-1].Round(time.Millisecond))

	// The manager's log never held one of Hydra's tokens.
	log, err := os.ReadFile(stack.ManagerLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"ory_rt_", "ory_at_", "ory_ac_"} {
		if bytes.Contains(log, []byte(prefix)) {
			t.Errorf("the manager's log contains a Hydra token (%s...)", prefix)
		}
	}
}
