package consent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/consent"
)

// chromium finds Debian's chromium, installing it with apt-get when root (as make test
// runs); without it the test fails.
func chromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	why := "chromium is not installed (apt-get install chromium)"
	if _, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
		t.Log("installing chromium with apt-get")
		why = ""
		for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium"}} {
			// Other suites (the pod test) may hold apt's locks for a while: retry until a deadline.
			var out []byte
			err := wait.PollUntilContextTimeout(context.Background(), 5*time.Second, 5*time.Minute, true, func(context.Context) (bool, error) {
				cmd := exec.Command("apt-get", append([]string{"-o", "DPkg::Lock::Timeout=60"}, args...)...)
				cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
				var err error
				out, err = cmd.CombinedOutput()
				return err == nil, nil
			})
			if err != nil {
				why = fmt.Sprintf("apt-get %s failed: %s", strings.Join(args, " "), out)
				break
			}
		}
		if p, err := exec.LookPath("chromium"); why == "" && err == nil {
			return p
		}
	}
	// Never skipped: a browser test that did not run would prove nothing.
	t.Fatalf("the browser test needs Debian's chromium: %s (as root, make test installs it)", why)
	return ""
}

// artifactsDir is where screenshots go: $ARTIFACTS/consent, else test/consent/artifacts
// (gitignored).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := "artifacts"
	if a := os.Getenv("ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "consent")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// browser is one headless Chromium shared by every case; each case opens its own tab.
type browser struct {
	t         *testing.T
	h         *harness
	ctx       context.Context
	artifacts string
}

func (b *browser) tab(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := chromedp.NewContext(b.ctx)
	ctx, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	return ctx, func() { cancel2(); cancel() }
}

// result waits for an outcome page and screenshots it as name.png (quality 100: PNG); it returns the page's text.
func (b *browser) result(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("title"))); err != nil {
		t.Fatalf("%s: no result page: %v", name, err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	// For the leak check: the page as rendered, and the code and state the callback URL
	// carried (they must appear nowhere else).
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	b.h.recordPage(html, href)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.artifacts, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	return text
}

// consentInBrowser opens link, picks account at the fake Google's consent page, unticks
// the scopes in untick, and presses button ("allow" or "deny").
func (b *browser) consentInBrowser(t *testing.T, ctx context.Context, link, account string, untick []string, button string) {
	t.Helper()
	actions := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("allow")),
	}
	if account != "" {
		actions = append(actions, chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name="account"][value="%s"]`, account))))
	}
	for _, s := range untick {
		actions = append(actions, chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name="scope"][value="%s"]`, s))))
	}
	actions = append(actions, chromedp.Click(chromedp.ID(button)))
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("consent page: %v", err)
	}
}

// The scenarios in a real browser, against one manager, consent server and fake Google.
func TestBrowser(t *testing.T) {
	path := chromium(t)
	h := newHarness(t, harnessOptions{})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(900, 700))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the one browser process
		t.Fatalf("starting chromium: %v", err)
	}
	b := &browser{t: t, h: h, ctx: bctx, artifacts: artifactsDir(t)}
	t.Logf("screenshots in %s", b.artifacts)

	t.Run("new grant to Ready", func(t *testing.T) {
		h.grant("b-new", []string{analytics})
		h.waitCondition("b-new", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonConsentRequired)
		link := h.waitLink("b-new", "")
		ctx, cancel := b.tab(t)
		defer cancel()
		b.consentInBrowser(t, ctx, link, "ana@example.com", nil, "allow")
		text := b.result(t, ctx, "granted")
		if !strings.Contains(text, "Access granted") || !strings.Contains(text, analytics) || !strings.Contains(text, "b-new") {
			t.Fatalf("granted page: %s", text)
		}
		// The page's style applies under its Content-Security-Policy (allowed by hash).
		color, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.getElementById('title')).color`))
		if err != nil || color != "rgb(24, 128, 56)" {
			t.Errorf("the title's color is %q (%v): the page's style was blocked", color, err)
		}
		g := h.waitCondition("b-new", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		if g.Status.Account == nil || g.Status.Account.Email != "ana@example.com" {
			t.Errorf("account %+v", g.Status.Account)
		}

		t.Run("reused link", func(t *testing.T) {
			ctx, cancel := b.tab(t)
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
				t.Fatal(err)
			}
			if text := b.result(t, ctx, "used"); !strings.Contains(text, "already used") {
				t.Fatalf("reused link page: %s", text)
			}
		})
	})

	t.Run("partial consent then the follow-up link", func(t *testing.T) {
		h.grant("b-partial", []string{analytics, drive})
		link := h.waitLink("b-partial", "")
		ctx, cancel := b.tab(t)
		defer cancel()
		b.consentInBrowser(t, ctx, link, "", []string{drive}, "allow")
		text := b.result(t, ctx, "partial")
		if !strings.Contains(text, "Some access granted") || !strings.Contains(text, drive) {
			t.Fatalf("partial page: %s", text)
		}
		h.waitCondition("b-partial", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionFalse, oauthv1alpha1.ReasonMissingScopes)
		// The page's own link for the rest.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("allow"))); err != nil {
			t.Fatal(err)
		}
		boxes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('input[name=scope]')).map(e => e.value)`))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(boxes, []string{analytics, drive}) {
			t.Errorf("the follow-up consent asks for %v, want all of spec.scopes (issue 28)", boxes)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("allow"))); err != nil {
			t.Fatal(err)
		}
		if text := b.result(t, ctx, "partial-followup"); !strings.Contains(text, "Access granted") {
			t.Fatalf("follow-up page: %s", text)
		}
		h.waitCondition("b-partial", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionTrue, "")
	})

	t.Run("deny", func(t *testing.T) {
		h.grant("b-deny", []string{analytics})
		link := h.waitLink("b-deny", "")
		ctx, cancel := b.tab(t)
		defer cancel()
		b.consentInBrowser(t, ctx, link, "", nil, "deny")
		if text := b.result(t, ctx, "denied"); !strings.Contains(text, "Access not granted") {
			t.Fatalf("denied page: %s", text)
		}
		if h.refreshTokenSecret("b-deny") != nil {
			t.Fatal("stored after deny")
		}
	})

	t.Run("expired link", func(t *testing.T) {
		h.grant("b-expired", []string{analytics})
		link := h.waitLink("b-expired", "")
		// Age the stored link instead of waiting a TTL out.
		store := &consent.Store{Reader: h.C, Writer: h.C}
		sec, rec, err := store.Load(h.Ctx, h.Name, "b-expired")
		if err != nil || rec == nil {
			t.Fatalf("link record: %v", err)
		}
		rec.ExpiresAt = time.Now().Add(-time.Minute)
		if err := store.Save(h.Ctx, h.GetGrant("b-expired"), sec, rec); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := b.tab(t)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
			t.Fatal(err)
		}
		if text := b.result(t, ctx, "expired"); !strings.Contains(text, "expired") {
			t.Fatalf("expired page: %s", text)
		}
	})

	t.Run("account mismatch with loginHint", func(t *testing.T) {
		h.grant("b-hint", []string{analytics}, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) { s.LoginHint = "ben@example.com" })
		link := h.waitLink("b-hint", "")
		ctx, cancel := b.tab(t)
		defer cancel()
		b.consentInBrowser(t, ctx, link, "chris@example.com", nil, "allow")
		text := b.result(t, ctx, "mismatch")
		// spec.loginHint is not shown to whoever opened the link (SECURITY.md).
		if !strings.Contains(text, "Wrong Google account") || strings.Contains(text, "ben@example.com") || !strings.Contains(text, "chris@example.com") {
			t.Fatalf("mismatch page: %s", text)
		}
		if h.refreshTokenSecret("b-hint") != nil {
			t.Fatal("stored for the wrong account")
		}
		// login_hint preselects the expected account: Allow as is.
		b.consentInBrowser(t, ctx, link, "", nil, "allow")
		if text := b.result(t, ctx, "mismatch-retry"); !strings.Contains(text, "Access granted") {
			t.Fatalf("retry with the expected account: %s", text)
		}
	})

	t.Run("re-consent of a revoked grant", func(t *testing.T) {
		h.grant("b-revoked", []string{analytics})
		ctx, cancel := b.tab(t)
		defer cancel()
		b.consentInBrowser(t, ctx, h.waitLink("b-revoked", ""), "", nil, "allow")
		b.result(t, ctx, "revoked-first")
		h.waitCondition("b-revoked", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		old := string(h.refreshTokenSecret("b-revoked").Data["refresh_token"])
		h.google.RevokeRefreshToken(old)
		g := h.GetGrant("b-revoked")
		g.Annotations = map[string]string{oauthv1alpha1.RefreshRequestedAtAnnotation: time.Now().UTC().Add(time.Second).Format(time.RFC3339)}
		if err := h.C.Update(h.Ctx, g); err != nil {
			t.Fatal(err)
		}
		h.waitCondition("b-revoked", oauthv1alpha1.ConditionRevoked, metav1.ConditionTrue, "")
		b.consentInBrowser(t, ctx, h.waitLink("b-revoked", ""), "", nil, "allow")
		if text := b.result(t, ctx, "revoked-reconsent"); !strings.Contains(text, "Access granted") {
			t.Fatalf("re-consent page: %s", text)
		}
		h.waitCondition("b-revoked", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		h.waitCondition("b-revoked", oauthv1alpha1.ConditionRevoked, metav1.ConditionFalse, "")
		if now := string(h.refreshTokenSecret("b-revoked").Data["refresh_token"]); now == old {
			t.Error("no new refresh token")
		}
	})

	t.Run("incremental authorization after adding a scope", func(t *testing.T) {
		h.grant("b-incr", []string{analytics})
		ctx, cancel := b.tab(t)
		defer cancel()
		b.consentInBrowser(t, ctx, h.waitLink("b-incr", ""), "", nil, "allow")
		b.result(t, ctx, "incremental-first")
		h.waitCondition("b-incr", oauthv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		g := h.GetGrant("b-incr")
		g.Spec.Scopes = append(g.Spec.Scopes, drive)
		if err := h.C.Update(h.Ctx, g); err != nil {
			t.Fatal(err)
		}
		h.waitCondition("b-incr", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionFalse, oauthv1alpha1.ReasonMissingScopes)
		b.consentInBrowser(t, ctx, h.waitLink("b-incr", ""), "", nil, "allow")
		if text := b.result(t, ctx, "incremental"); !strings.Contains(text, "Access granted") || !strings.Contains(text, analytics) {
			t.Fatalf("incremental page (should list earlier scopes too): %s", text)
		}
		h.waitCondition("b-incr", oauthv1alpha1.ConditionScopesGranted, metav1.ConditionTrue, "")
	})
}
