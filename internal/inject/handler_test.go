package inject

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/httplimit"
)

func request(raw string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create, Namespace: "reports",
		Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: []byte(raw)},
	}}
}

func grants(m map[string]*oauthv1alpha1.GoogleOAuthGrant) GetGrant {
	return func(_ context.Context, ns, name string) (*oauthv1alpha1.GoogleOAuthGrant, error) {
		if g := m[ns+"/"+name]; g != nil {
			return g, nil
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "oauth.grantkeeper.dev", Resource: "googleoauthgrants"}, name)
	}
}

// apply applies the response's patch to raw, as the API server would.
func apply(t *testing.T, raw string, resp admission.Response) *corev1.Pod {
	t.Helper()
	ops, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// Pods without the annotation are stored exactly as sent: no patch at all, whatever they
// hold (fields this version of the API does not know included), and the grant is not even
// looked up.
func TestHandlerLeavesOtherPodsUntouched(t *testing.T) {
	h := &Handler{Config: cfg, GetGrant: func(context.Context, string, string) (*oauthv1alpha1.GoogleOAuthGrant, error) {
		t.Error("looked up a grant for a Pod that names none")
		return nil, nil
	}}
	for _, raw := range []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1"}]}}`,
		`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","annotations":{"oauth.grantkeeper.dev/refresh-requested-at":"x","inject":"analytics"}},` +
			`"spec":{"futureField":{"a":1},"containers":[{"name":"app","image":"app:1","env":[{"name":"GCE_METADATA_HOST","value":"x"}]}]}}`,
	} {
		resp := h.Handle(context.Background(), request(raw))
		if !resp.Allowed || len(resp.Patches) != 0 || resp.PatchType != nil || len(resp.Warnings) != 0 {
			t.Errorf("allowed=%v patches=%v patchType=%v warnings=%v for %s", resp.Allowed, resp.Patches, resp.PatchType, resp.Warnings, raw)
		}
	}
}

func TestHandlerInjects(t *testing.T) {
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "analytics", Namespace: "reports"},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{AccessTokenSecretName: "analytics-token", Scopes: []string{"openid"}}}
	h := &Handler{Config: cfg, GetGrant: grants(map[string]*oauthv1alpha1.GoogleOAuthGrant{"reports/analytics": g})}
	raw := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"oauth.grantkeeper.dev/inject":"analytics"}},` +
		`"spec":{"containers":[{"name":"app","image":"app:1"}]}}`
	resp := h.Handle(context.Background(), request(raw))
	if !resp.Allowed || len(resp.Warnings) != 0 {
		t.Fatalf("allowed=%v warnings=%v result=%v", resp.Allowed, resp.Warnings, resp.Result)
	}
	p := apply(t, raw, resp)
	if p.Namespace != "" {
		t.Errorf("the patch set the namespace to %q", p.Namespace)
	}
	if len(p.Spec.InitContainers) != 1 || p.Spec.InitContainers[0].Name != SidecarName || p.Spec.Volumes[0].Secret.SecretName != "analytics-token" {
		t.Fatalf("patched Pod: %+v", p.Spec)
	}
	if envOf(p.Spec.Containers[0])["GCE_METADATA_HOST"] != ListenAddress {
		t.Errorf("env %v", p.Spec.Containers[0].Env)
	}
}

func TestHandlerMissingGrantWarns(t *testing.T) {
	h := &Handler{Config: cfg, GetGrant: grants(nil)}
	raw := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"oauth.grantkeeper.dev/inject":"analytics"}},"spec":{"containers":[{"name":"app"}]}}`
	resp := h.Handle(context.Background(), request(raw))
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], `GoogleOAuthGrant "analytics" not found in namespace "reports"`) {
		t.Fatalf("allowed=%v warnings=%q", resp.Allowed, resp.Warnings)
	}
	if p := apply(t, raw, resp); p.Spec.Volumes[0].Secret.SecretName != "analytics-access-token" {
		t.Errorf("volume %+v", p.Spec.Volumes[0])
	}
}

func TestHandlerLookupFailureStillInjects(t *testing.T) {
	h := &Handler{Config: cfg, GetGrant: func(context.Context, string, string) (*oauthv1alpha1.GoogleOAuthGrant, error) {
		return nil, errors.New("etcdserver: request timed out")
	}}
	raw := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"oauth.grantkeeper.dev/inject":"analytics"}},"spec":{"containers":[{"name":"app"}]}}`
	resp := h.Handle(context.Background(), request(raw))
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "could not read GoogleOAuthGrant analytics") {
		t.Fatalf("allowed=%v warnings=%q", resp.Allowed, resp.Warnings)
	}
}

func TestHandlerRefusesBadAnnotation(t *testing.T) {
	h := &Handler{Config: cfg, GetGrant: grants(nil)}
	raw := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"oauth.grantkeeper.dev/inject":"Not A Name"}},"spec":{"containers":[{"name":"app"}]}}`
	resp := h.Handle(context.Background(), request(raw))
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "is not a GoogleOAuthGrant name") {
		t.Fatalf("allowed=%v result=%+v", resp.Allowed, resp.Result)
	}
}

// The webhook answers any caller. A review for namespace "reports" whose Pod object claims
// another namespace must not look up, or reveal, that namespace's grant (its Secret name,
// scopes, existence); a grant is only ever looked up in the request's namespace.
func TestHandlerRevealsNothingAcrossNamespaces(t *testing.T) {
	secret := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "payroll", Name: "bank"},
		Spec: oauthv1alpha1.GoogleOAuthGrantSpec{AccessTokenSecretName: "payroll-bank-token-xyz", Scopes: []string{"https://www.googleapis.com/auth/secret-scope"}}}
	var looked []string
	lookup := grants(map[string]*oauthv1alpha1.GoogleOAuthGrant{"payroll/bank": secret})
	h := &Handler{Config: cfg, GetGrant: func(ctx context.Context, ns, name string) (*oauthv1alpha1.GoogleOAuthGrant, error) {
		looked = append(looked, ns+"/"+name)
		return lookup(ctx, ns, name)
	}}
	for _, tc := range []struct{ name, raw, reqNS string }{
		{"object claims another namespace", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"payroll","annotations":{"oauth.grantkeeper.dev/inject":"bank"}},"spec":{"containers":[{"name":"app"}]}}`, "reports"},
		{"request names no namespace", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"payroll","annotations":{"oauth.grantkeeper.dev/inject":"bank"}},"spec":{"containers":[{"name":"app"}]}}`, ""},
		{"same grant name in the request's namespace, where there is none", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"oauth.grantkeeper.dev/inject":"bank"}},"spec":{"containers":[{"name":"app"}]}}`, "reports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			looked = nil
			req := request(tc.raw)
			req.Namespace = tc.reqNS
			resp := h.Handle(context.Background(), req)
			answer, _ := json.Marshal(resp)
			for _, secret := range []string{"payroll-bank-token-xyz", "secret-scope"} {
				if strings.Contains(string(answer), secret) {
					t.Errorf("the answer reveals %q of grant payroll/bank: %s", secret, answer)
				}
			}
			for _, l := range looked {
				if !strings.HasPrefix(l, "reports/") {
					t.Errorf("looked up grant %s for a request in namespace %q", l, tc.reqNS)
				}
			}
		})
	}
}

// A namespace that creates annotated Pods faster than its share is refused (429, naming the
// namespace, saying when to retry), not admitted without the sidecar; another namespace is
// injected meanwhile, though every request comes from the same caller (the API server); a
// Pod that does not ask for injection is never counted.
func TestFloodingNamespaceKeepsItsFloodToItself(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	limiter := httplimit.New(httplimit.Limits{Rate: 5, Burst: 20, Now: func() time.Time { return now }})
	h := &Handler{
		Config: Config{Image: "sidecar:1"},
		GetGrant: grants(map[string]*oauthv1alpha1.GoogleOAuthGrant{
			"reports/analytics": {ObjectMeta: metav1.ObjectMeta{Name: "analytics", Namespace: "reports"}},
			"noisy/analytics":   {ObjectMeta: metav1.ObjectMeta{Name: "analytics", Namespace: "noisy"}},
		}),
		Limit: limiter.Allow,
	}
	const annotated = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"oauth.grantkeeper.dev/inject":"analytics"}},"spec":{"containers":[{"name":"app"}]}}`
	in := func(ns, raw string) admission.Request {
		req := request(raw)
		req.Namespace = ns
		return req
	}
	injected, refused := 0, 0
	for range 1000 {
		resp := h.Handle(context.Background(), in("noisy", annotated))
		switch {
		case resp.Allowed && len(resp.Patches) > 0:
			injected++
		case !resp.Allowed && resp.Result.Code == http.StatusTooManyRequests:
			refused++
			if !strings.Contains(resp.Result.Message, "namespace noisy") || resp.Result.Details == nil || resp.Result.Details.RetryAfterSeconds != 1 {
				t.Fatalf("refusal %q (details %+v): want the namespace named and retry after 1 s", resp.Result.Message, resp.Result.Details)
			}
		default:
			t.Fatalf("the flooding namespace's Pod was admitted without the sidecar or refused otherwise: %+v", resp.AdmissionResponse)
		}
	}
	if injected != 20 || refused != 980 {
		t.Errorf("1000 annotated Pods from one namespace at once: %d injected, %d refused; want 20 (its burst) and 980", injected, refused)
	}
	if resp := h.Handle(context.Background(), in("reports", annotated)); !resp.Allowed || len(resp.Patches) == 0 {
		t.Errorf("another namespace during the flood: allowed %v with %d patches, want the sidecar injected (%+v)", resp.Allowed, len(resp.Patches), resp.Result)
	}
	plain := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"q"},"spec":{"containers":[{"name":"app"}]}}`
	if resp := h.Handle(context.Background(), in("noisy", plain)); !resp.Allowed {
		t.Errorf("a Pod that does not ask for injection, in the flooding namespace: refused (%+v)", resp.Result)
	}
	now = now.Add(time.Second)
	if resp := h.Handle(context.Background(), in("noisy", annotated)); !resp.Allowed || len(resp.Patches) == 0 {
		t.Errorf("the flooding namespace a second later: allowed %v, want injected again", resp.Allowed)
	}
}
