package consent_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
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
	bin := buildPlugin(t)
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
	h.waitCondition("gk", oauthv1alpha1.ConditionReady, metav1.ConditionFalse, oauthv1alpha1.ReasonConsentRequired)
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

// buildPlugin builds kubectl-grantkeeper into a temporary directory.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubectl-grantkeeper")
	if err := gobuild.Build("", "github.com/grantkeeper/grantkeeper/cmd/kubectl-grantkeeper", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestViewerCannotObtainLink (issue 28 finding 2): someone with the shipped viewer role (which
// aggregates into view) sees that consent is required, but gets no usable link: not from the
// grant, not from the plugin; someone who may read Secrets gets it from the plugin.
func TestViewerCannotObtainLink(t *testing.T) {
	bin := buildPlugin(t)
	h := newHarness(t, harnessOptions{})
	kc := kubeconfig(t)
	h.grant("gv", []string{analytics})
	link := h.waitLink("gv", "")
	id := consent.LinkID(link)

	// The viewer role as shipped, bound in the test's namespace.
	raw, err := os.ReadFile("../../config/rbac/googleoauthgrant_viewer_role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		t.Fatal(err)
	}
	role.Name, role.Labels, role.ResourceVersion = "viewer-"+h.Name, nil, ""
	if err := h.C.Create(h.Ctx, role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.C.Delete(context.Background(), role) })
	viewer := "viewer@" + h.Name
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: h.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: viewer}}}
	if err := h.C.Create(h.Ctx, rb); err != nil {
		t.Fatal(err)
	}

	// What the viewer reads of the grant holds no link, and says consent is required.
	kubectl := filepath.Join(env.BinDir, "kubectl")
	var got []byte
	h.Eventually(10*time.Second, "the viewer reads the grant", func() (bool, string) {
		got, err = exec.Command(kubectl, "--kubeconfig", kc, "--as", viewer, "-n", h.Name, "get", "gog", "gv", "-o", "json").CombinedOutput()
		return err == nil, string(got)
	})
	if strings.Contains(string(got), id) || strings.Contains(string(got), "/c/") {
		t.Errorf("the grant as the viewer reads it holds the link: %s", got)
	}
	table, err := exec.Command(kubectl, "--kubeconfig", kc, "--as", viewer, "-n", h.Name, "get", "gog", "gv").CombinedOutput()
	if err != nil || !strings.Contains(string(table), "CONSENT") || !strings.Contains(string(table), "Required") {
		t.Errorf("kubectl get gog does not say consent is Required: %v\n%s", err, table)
	}

	// The plugin, as the viewer: a clear error, no link.
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "--kubeconfig", kc, "--as", viewer, "-n", h.Name, "consent-link", "gv")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil || strings.Contains(stdout.String()+stderr.String(), id) ||
		!strings.Contains(stderr.String(), "you may not read its consent link") || !strings.Contains(stderr.String(), consent.SecretName("gv")) {
		t.Errorf("consent-link as a viewer: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	// As someone who may read Secrets: the link.
	out, err := exec.Command(bin, "--kubeconfig", kc, "-n", h.Name, "consent-link", "gv").Output()
	if err != nil || strings.TrimSpace(string(out)) != link {
		t.Errorf("consent-link as admin: %v %q, want %q", err, out, link)
	}
}
