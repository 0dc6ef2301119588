package controllers_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// localClient creates a GoogleOAuthClient naming Secret secret.
func (h *harness) localClient(name, secret string) {
	h.T.Helper()
	c := &oauthv1alpha1.GoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.Name},
		Spec: oauthv1alpha1.GoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClientObjectSecretReference{Name: secret}}}
	if err := h.C.Create(h.Ctx, c); err != nil {
		h.T.Fatal(err)
	}
}

// clusterClient creates a ClusterGoogleOAuthClient with a unique name, deleted at cleanup;
// its Secret is in the test namespace.
func (h *harness) clusterClient(secret string, mutate func(*oauthv1alpha1.ClusterGoogleOAuthClientSpec)) string {
	h.T.Helper()
	c := &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "c-" + rand.String(8)},
		Spec: oauthv1alpha1.ClusterGoogleOAuthClientSpec{SecretRef: oauthv1alpha1.ClusterClientSecretReference{Name: secret, Namespace: h.Name}}}
	if mutate != nil {
		mutate(&c.Spec)
	}
	if err := h.C.Create(h.Ctx, c); err != nil {
		h.T.Fatal(err)
	}
	h.T.Cleanup(func() { _ = h.C.Delete(h.Ctx, c) })
	return c.Name
}

// refGrant creates a grant naming a client object, with a refresh token of its own.
func (h *harness) refGrant(name, kind, clientName string) string {
	h.T.Helper()
	rt := h.google.NewRefreshToken(clientID, analytics)
	h.secret(name+"-refresh-token", map[string]string{"refresh_token": rt})
	h.grant(name, func(s *oauthv1alpha1.GoogleOAuthGrantSpec) {
		s.ClientSecretRef, s.ClientRef = nil, &oauthv1alpha1.ClientReference{Kind: kind, Name: clientName}
	})
	return rt
}

// waitClient waits until a client object's Ready condition has reason (and status) for its generation.
func (h *harness) waitClient(obj client.Object, status *oauthv1alpha1.GoogleOAuthClientStatus, status0 metav1.ConditionStatus, reason string) {
	h.T.Helper()
	h.Eventually(30*time.Second, fmt.Sprintf("%s Ready=%s/%s", obj.GetName(), status0, reason), func() (bool, string) {
		if err := h.C.Get(h.Ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(status.Conditions, oauthv1alpha1.ConditionReady)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == status0 && c.Reason == reason && status.ObservedGeneration == obj.GetGeneration(), fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
	})
}

func (h *harness) readyMessage(name string) string {
	c := meta.FindStatusCondition(h.GetGrant(name).Status.Conditions, oauthv1alpha1.ConditionReady)
	if c == nil {
		return ""
	}
	return c.Message
}

// TestClientObjectStatus: both client kinds report whether their Secret holds a client, in
// the grants' words, and the client id, following changes to the Secret within seconds.
func TestClientObjectStatus(t *testing.T) {
	h := newHarness(t)
	goc := &oauthv1alpha1.GoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: h.Name}}
	h.localClient("shared", "shared-client")
	h.waitClient(goc, &goc.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretNotFound)
	if msg := meta.FindStatusCondition(goc.Status.Conditions, oauthv1alpha1.ConditionReady).Message; !strings.Contains(msg, `Secret "shared-client" (spec.secretRef of GoogleOAuthClient "shared") not found in namespace "`+h.Name+`"`) {
		t.Errorf("SecretNotFound message: %s", msg)
	}

	h.secret("shared-client", map[string]string{"client_id": clientID})
	h.waitClient(goc, &goc.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretKeyMissing)
	h.setSecretData("shared-client", map[string]string{"client_secret.json": `{"installed": {"client_id": "` + clientID + `", "client_secret": "` + clientSecret + `"}}`})
	h.waitClient(goc, &goc.Status, metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid)
	if goc.Status.ClientID != clientID {
		t.Errorf("status.clientID = %q, want %q", goc.Status.ClientID, clientID)
	}
	h.setSecretData("shared-client", map[string]string{"client_secret.json": `{"web": {}}`})
	h.waitClient(goc, &goc.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonInvalidClientSecret)
	if goc.Status.ClientID != "" {
		t.Errorf("status.clientID = %q for an invalid client", goc.Status.ClientID)
	}

	name := h.clusterClient("cluster-client", nil)
	cgoc := &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name}}
	h.waitClient(cgoc, &cgoc.Status, metav1.ConditionFalse, oauthv1alpha1.ReasonSecretNotFound)
	h.secret("cluster-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.waitClient(cgoc, &cgoc.Status, metav1.ConditionTrue, oauthv1alpha1.ReasonClientValid)
	if cgoc.Status.ClientID != clientID {
		t.Errorf("cluster client status.clientID = %q", cgoc.Status.ClientID)
	}
	h.waitEvent("shared", "Warning/"+oauthv1alpha1.ReasonInvalidClientSecret)
}

// TestClientRefReasons: each clientRef reason, with its message, no token request while it
// holds, and recovery within seconds of the fix.
func TestClientRefReasons(t *testing.T) {
	h := newHarness(t)
	rt := h.refGrant("g", oauthv1alpha1.KindGoogleOAuthClient, "shared")
	g := h.waitCondition("g", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonClientNotFound)
	if msg := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady).Message; !strings.Contains(msg, `GoogleOAuthClient "shared" (spec.clientRef) not found in namespace "`+h.Name+`"`) {
		t.Errorf("ClientNotFound message: %s", msg)
	}

	// A client whose Secret is broken: ClientNotReady, carrying the client's reason.
	h.secret("shared-client", map[string]string{"client_id": clientID})
	h.localClient("shared", "shared-client")
	h.waitCondition("g", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonClientNotReady)
	if msg := h.readyMessage("g"); !strings.Contains(msg, `GoogleOAuthClient "shared" (spec.clientRef) is not Ready (SecretKeyMissing: `) {
		t.Errorf("ClientNotReady message: %s", msg)
	}
	h.poke("g")
	if n := h.google.Requests(rt); n != 0 {
		t.Fatalf("%d token requests with an unusable client", n)
	}

	h.setSecretData("shared-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.waitReady("g")
	if n := h.google.Requests(rt); n != 1 {
		t.Errorf("%d token requests to recover, want 1", n)
	}
	h.waitEvent("g", "Warning/"+oauthv1alpha1.ReasonClientNotReady)

	// The client object deleted: ClientNotFound again; the derived Secret keeps its token.
	if err := h.C.Delete(h.Ctx, &oauthv1alpha1.GoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: h.Name}}); err != nil {
		t.Fatal(err)
	}
	h.waitCondition("g", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonClientNotFound)
	if tok := h.derived("g-access-token").Data["access_token"]; len(tok) == 0 {
		t.Error("the derived Secret lost its token when the client went away")
	}
	h.localClient("shared", "shared-client")
	h.waitReady("g")
}

// TestClusterClientSelector: a cluster client admits a namespace by label or by name; a
// grant in a namespace it does not admit never uses it, including after the selector or
// the namespace's labels change under a Ready grant.
func TestClusterClientSelector(t *testing.T) {
	h := newHarness(t)
	h.secret("cluster-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	name := h.clusterClient("cluster-client", func(s *oauthv1alpha1.ClusterGoogleOAuthClientSpec) {
		s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"grantkeeper-test/team": "analytics"}}
	})
	rt := h.refGrant("g", oauthv1alpha1.KindClusterGoogleOAuthClient, name)
	g := h.waitCondition("g", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonClientNotAllowed)
	want := fmt.Sprintf(`ClusterGoogleOAuthClient %q (spec.clientRef) does not admit namespace %q`, name, h.Name)
	if msg := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady).Message; !strings.Contains(msg, want) {
		t.Errorf("ClientNotAllowed message %q lacks %q", msg, want)
	}
	h.requestRefresh("g")
	h.poke("g")
	if n := h.google.Requests(rt); n != 0 {
		t.Fatalf("%d token requests with a client the namespace may not use (a manual request included)", n)
	}

	// The namespace gets the label: admitted within seconds.
	setLabel := func(v *string) {
		t.Helper()
		ns := &corev1.Namespace{}
		if err := h.C.Get(h.Ctx, client.ObjectKey{Name: h.Name}, ns); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			delete(ns.Labels, "grantkeeper-test/team")
		} else {
			if ns.Labels == nil {
				ns.Labels = map[string]string{}
			}
			ns.Labels["grantkeeper-test/team"] = *v
		}
		if err := h.C.Update(h.Ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	team := "analytics"
	setLabel(&team)
	h.waitReady("g")
	token := string(h.derived("g-access-token").Data["access_token"])

	// The label goes: the Ready grant stops, says why, and keeps its last token.
	setLabel(nil)
	h.waitCondition("g", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonClientNotAllowed)
	if got := string(h.derived("g-access-token").Data["access_token"]); got != token {
		t.Error("the derived Secret changed when the namespace lost the client")
	}
	before := h.google.Requests(rt)
	h.requestRefresh("g")
	h.poke("g")
	if n := h.google.Requests(rt); n != before {
		t.Fatalf("%d token requests after the namespace lost the client", n-before)
	}

	// Admitted by name instead; then the administrator narrows the list again.
	setNamespaces := func(names ...string) {
		t.Helper()
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"namespaces": names}})
		if err := h.C.Patch(h.Ctx, &oauthv1alpha1.ClusterGoogleOAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatal(err)
		}
	}
	setNamespaces(h.Name)
	h.waitReady("g")
	setNamespaces("some-other-namespace")
	h.waitCondition("g", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonClientNotAllowed)
	h.waitEvent("g", "Warning/"+oauthv1alpha1.ReasonClientNotAllowed)
}

// rotationGrants is how many grants TestClientSecretRotation shares one client among:
// GRANTKEEPER_ROTATION_GRANTS=1000 runs the full size.
func rotationGrants(t *testing.T) int {
	if v := os.Getenv("GRANTKEEPER_ROTATION_GRANTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("GRANTKEEPER_ROTATION_GRANTS=%q: want a positive number", v)
		}
		return n
	}
	return 50
}

// TestClientSecretRotation: rotating a shared client's secret (editing its Secret) makes no
// token request by itself, every grant stays Ready, and the next refreshes use the new
// secret (the fake Google server rejects the old one after rotation).
func TestClientSecretRotation(t *testing.T) {
	h := newHarness(t)
	n := rotationGrants(t)
	h.secret("shared-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.localClient("shared", "shared-client")
	names := make([]string, n)
	start := time.Now()
	for i := range names {
		names[i] = fmt.Sprintf("g%04d", i)
		h.refGrant(names[i], oauthv1alpha1.KindGoogleOAuthClient, "shared")
	}
	allReady := func() {
		t.Helper()
		h.Eventually(time.Duration(30+n/10)*time.Second, "every grant Ready", func() (bool, string) {
			var grants oauthv1alpha1.GoogleOAuthGrantList
			if err := h.C.List(h.Ctx, &grants, client.InNamespace(h.Name)); err != nil {
				return false, err.Error()
			}
			ready := 0
			for _, g := range grants.Items {
				if meta.IsStatusConditionTrue(g.Status.Conditions, oauthv1alpha1.ConditionReady) {
					ready++
				}
			}
			return ready == n, fmt.Sprintf("%d of %d Ready", ready, n)
		})
	}
	allReady()
	t.Logf("%d grants on one client Ready in %s", n, time.Since(start).Round(time.Millisecond))
	requests := h.google.TotalRequests()

	// Rotate: Google now takes only the new secret; the Secret gets it.
	const rotated = "GOCSPX-rotated-9Zk3Lq2Vw8"
	h.google.AddClient(clientID, rotated)
	rotatedAt := time.Now()
	h.setSecretData("shared-client", map[string]string{"client_id": clientID, "client_secret": rotated})
	// Every grant is looked at again after the rotation (the Secret's event reaches them
	// through the client index) and none makes a request.
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() { defer wg.Done(); h.waitDecidedAfter(name, rotatedAt) }()
	}
	wg.Wait()
	t.Logf("%d grants re-decided %s after the rotation", n, time.Since(rotatedAt).Round(time.Millisecond))
	if extra := h.google.TotalRequests() - requests; extra != 0 {
		t.Fatalf("rotating the client secret made %d token requests; want 0", extra)
	}
	allReady()

	// The next refreshes (manual ones here, to not wait 40 minutes) use the new secret.
	for _, name := range names[:min(n, 10)] {
		h.requestRefresh(name)
	}
	for _, name := range names[:min(n, 10)] {
		h.Eventually(20*time.Second, name+" refreshed with the new secret", func() (bool, string) {
			g := h.GetGrant(name)
			c := meta.FindStatusCondition(g.Status.Conditions, oauthv1alpha1.ConditionReady)
			return g.Status.LastHandledRefreshRequest != "" && c != nil && c.Reason == oauthv1alpha1.ReasonTokenValid, ""
		})
	}
	if got := h.google.TotalRequests() - requests; got != min(n, 10) {
		t.Errorf("%d token requests for %d manual refreshes", got, min(n, 10))
	}
	allReady()
	h.recordUserSecret(map[string][]byte{"client_secret": []byte(rotated)})
}
