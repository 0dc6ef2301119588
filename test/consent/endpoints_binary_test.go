package consent_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/consent"
	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/grantns"
)

// freePort is a loopback address free a moment ago (the binary binds it; no fixed ports).
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestEndpointsBinary: cmd/manager --components=endpoints, the binary as the Deployment runs
// it, with a kubeconfig that impersonates a ServiceAccount holding exactly the shipped
// endpoints roles (bound in one namespace, as the chart's watchNamespaces does): it starts
// without a Secret cache, reads the signing key by name, answers forged and unknown links
// 404 and a malformed security event 400, and nothing it does is forbidden.
func TestEndpointsBinary(t *testing.T) {
	ns := grantns.New(t, env.Client, "sm")
	sys := grantns.New(t, env.Client, "sm-sys")
	ctx := ns.Ctx
	sa := "endpoints-" + ns.Name
	objs := []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: shippedRules(t, "config/endpoints/role.yaml", "endpoints-role")},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns.Name},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sa}, Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: sys.Name}}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: sys.Name}, Rules: shippedRules(t, "config/endpoints/rbac.yaml", "endpoints-key-role")},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: sys.Name},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "k"}, Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: sys.Name}}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	key := consent.NewKey()
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: consent.KeySecretName, Namespace: sys.Name}, Data: map[string][]byte{consent.KeyDataKey: key}}); err != nil {
		t.Fatal(err)
	}
	g := &oauthv1alpha1.GoogleOAuthGrant{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: ns.Name}, Spec: oauthv1alpha1.GoogleOAuthGrantSpec{
		ClientSecretRef: &oauthv1alpha1.ClientSecretReference{Name: "c"}, RefreshTokenSecretRef: &oauthv1alpha1.RefreshTokenSecretReference{Name: "rt"}, Scopes: []string{analytics}}}
	if err := env.Client.Create(ctx, g); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData,
		Impersonate: "system:serviceaccount:" + sys.Name + ":" + sa, ImpersonateGroups: []string{"system:serviceaccounts", "system:authenticated"}}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kcPath); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "manager")
	// make test's prebuilt manager (gobuild): a go build here compiled the manager and all it
	// imports in a configuration nothing else in make test uses.
	if err := gobuild.Build("", "github.com/grantkeeper/grantkeeper/cmd/manager", bin); err != nil {
		t.Fatal(err)
	}
	caddr, raddr, paddr := freePort(t), freePort(t), freePort(t)
	logs := &grantns.SyncBuffer{}
	cmd := exec.Command(bin, "--components=endpoints", "--consent-bind-address="+caddr, "--consent-base-url=http://"+caddr,
		"--risc-bind-address="+raddr, "--metrics-bind-address=0", "--health-probe-bind-address="+paddr,
		"--manager-namespace="+sys.Name, "--namespaces="+ns.Name)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kcPath)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill() // this test's own process
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("the endpoints process's logs:\n%s", logs.String())
		}
	}()
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ns.Eventually(30*time.Second, "healthz", func() (bool, string) {
		r, err := hc.Get("http://" + paddr + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		r.Body.Close()
		return r.StatusCode == 200, fmt.Sprint(r.StatusCode)
	})
	cur := ns.GetGrant("g")
	for _, c := range []struct {
		u    string
		want int
	}{
		{"http://" + caddr + consent.LinkPath(ns.Name, "g", consent.NewKey().LinkToken(ns.Name, "g", string(cur.UID), consent.NewID(), time.Now().Add(time.Hour))), 404},
		{"http://" + caddr + consent.LinkPath(ns.Name, "g", key.LinkToken(ns.Name, "g", string(cur.UID), consent.NewID(), time.Now().Add(time.Hour))), 404},
	} {
		var code int
		ns.Eventually(20*time.Second, c.u, func() (bool, string) {
			r, err := hc.Get(c.u)
			if err != nil {
				return false, err.Error()
			}
			r.Body.Close()
			code = r.StatusCode
			return code == c.want, fmt.Sprint(code)
		})
	}
	r, err := hc.Post("http://"+raddr+"/risc", "application/secevent+jwt", strings.NewReader("x.y.z"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed security event: HTTP %d, want 400", r.StatusCode)
	}
	if l := strings.ToLower(logs.String()); strings.Contains(l, "forbidden") || strings.Contains(l, "failed to list") || !strings.Contains(l, `"components":"endpoints"`) {
		t.Errorf("the endpoints process logged a refusal, or did not start as endpoints")
	}
}
