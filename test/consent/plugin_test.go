package consent_test

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/plan"
)

// kubeconfig writes a kubeconfig for the test control plane (as its admin).
func kubeconfig(t *testing.T) string {
	t.Helper()
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// `kubectl grantkeeper consent-link NAME --wait` prints the link in the link Secret, then returns
// once the grant is Ready after the consent.
func TestPluginConsentLink(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kubectl-grantkeeper")
	build := exec.Command("go", "build", "-o", bin, "github.com/grantkeeper/grantkeeper/cmd/kubectl-grantkeeper")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, out)
	}
	h := newHarness(t, harnessOptions{})
	kc := kubeconfig(t)
	h.grant("gk", []string{analytics})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig", kc, "-n", h.Name, "consent-link", "gk", "--wait", "--timeout=50s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first line is the link; the plugin then waits.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the link: %v", err)
	}
	link := strings.TrimSpace(line)
	if want := h.linkInSecret("gk"); link != want {
		t.Fatalf("plugin printed %q, status has %q", link, want)
	}
	h.waitCondition("gk", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, plan.ReasonConsentRequired)
	h.consentOverHTTP(link)
	if err := cmd.Wait(); err != nil { // stdout is drained: the plugin prints one line
		t.Fatalf("consent-link --wait: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "is Ready (account ana@example.com)") {
		t.Errorf("consent-link --wait said: %s", stderr.String())
	}

	// A grant that needs no consent: nothing on stdout, exit 0.
	out, err := exec.Command(bin, "--kubeconfig", kc, "-n", h.Name, "consent-link", "gk").Output()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("consent-link on a Ready grant: %v %q", err, out)
	}
}
