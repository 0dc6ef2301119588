package main

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
)

// consentStep restarts the manager with consent links on a free loopback port, creates a
// grant whose refresh token does not exist yet, and returns the link the plugin prints.
func consentStep(root string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	flags := []string{"--consent-bind-address=" + addr, "--consent-base-url=http://" + addr, "--auth-url=" + stack.Google.AuthURL()}
	fmt.Printf("  manager %s\n", strings.Join(flags, " "))
	stack.StopManager()
	if err := stack.StartManager(flags...); err != nil {
		fail("restarting the manager: %v", err)
	}
	manifest := fmt.Sprintf(`apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: drive, namespace: default}
spec:
  clientSecretRef: {name: google-oauth-client}
  refreshTokenSecretRef: {name: drive-refresh-token}
  scopes: [%s, https://www.googleapis.com/auth/drive.readonly]
`, devstack.SampleScope)
	fmt.Print("  $ kubectl apply -f - <<EOF\n" + manifest + "  EOF\n")
	apply(manifest)
	kubectl("wait", "-n", "default", "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=ConsentRequired", "--timeout=60s", "googleoauthgrant/drive")
	kubectl("get", "googleoauthgrants", "-n", "default", "-o", "wide")
	fmt.Println("  $ kubectl grantkeeper consent-link drive -n default")
	plugin := filepath.Join(root, "bin", "kubectl-grantkeeper")
	out, err := exec.Command(plugin, "--kubeconfig="+stack.AdminKubeconfig, "consent-link", "drive", "-n", "default").Output()
	if err != nil {
		fail("kubectl grantkeeper consent-link: %v", err)
	}
	link := strings.TrimSpace(string(out))
	fmt.Println("    " + link)
	fmt.Println("  The account owner opens it, picks an account and the scopes at (fake) Google's consent page,")
	fmt.Println("  and the grant turns Ready: the refresh token goes from Google to the cluster, never through kubectl.")
	return link
}
