package controllers_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// Issue 33: whether a grant is blocked until a person acts is a condition of its own,
// Stalled (kstatus), present with True or False on every reconciled grant, and kubectl's
// `wait --for=condition=Stalled=false` works on it. A healthy grant and one failing
// transiently are not stalled; a missing Secret stalls a grant until the Secret appears.
func TestStalledCondition(t *testing.T) {
	t.Parallel() // its own namespace and fake Google: nothing shared with other tests
	h := newHarness(t)
	h.startManager()
	h.credentials("ok")
	h.grant("ok")
	h.secret("stuck-client", map[string]string{"client_id": clientID, "client_secret": clientSecret})
	h.grant("stuck") // no refresh-token Secret

	h.waitReady("ok")
	h.waitCondition("ok", oauthv1alpha1.ConditionStalled, metav1.ConditionFalse, oauthv1alpha1.ReasonProgressing)
	h.waitCondition("stuck", oauthv1alpha1.ConditionStalled, metav1.ConditionTrue, oauthv1alpha1.ReasonSecretNotFound)
	kubectl(t, h, "wait", "--for=condition=Stalled=false", "--timeout=20s", "googleoauthgrant/ok")
	kubectl(t, h, "wait", "--for=condition=Stalled", "--timeout=20s", "googleoauthgrant/stuck")

	// The person acts: the grant is no longer stalled, and kubectl sees it.
	rt := h.google.NewRefreshToken(clientID, analytics)
	h.secret("stuck-refresh-token", map[string]string{"refresh_token": rt})
	kubectl(t, h, "wait", "--for=condition=Stalled=false", "--timeout=30s", "googleoauthgrant/stuck")
	g := h.waitReady("stuck")
	for _, typ := range []string{oauthv1alpha1.ConditionReady, oauthv1alpha1.ConditionStalled} {
		if meta.FindStatusCondition(g.Status.Conditions, typ) == nil {
			t.Errorf("no %s condition: %v", typ, g.Status.Conditions)
		}
	}
}

// kubectl runs the control plane's kubectl as the test's client, in the test's namespace.
func kubectl(t *testing.T, h *harness, args ...string) {
	t.Helper()
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest", Namespace: h.Name}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(h.Ctx, filepath.Join(env.BinDir, "kubectl"), append([]string{"--kubeconfig", path}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	t.Logf("kubectl %v: %s", args, out)
}
