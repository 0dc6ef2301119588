// Command demo is `make demo`: a local control plane, grantkeeper under its shipped RBAC, a
// fake Google, and a walkthrough with kubectl of what a user sees. It leaves everything
// running until Ctrl-C (or exits after the walkthrough with DEMO_EXIT=1) and stops every
// process it started on the way out.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
	"github.com/grantkeeper/grantkeeper/test/framework/localcluster"
)

var (
	stack    *devstack.Stack
	downOnce sync.Once
	start    = time.Now()
)

func down() {
	downOnce.Do(func() {
		if stack != nil {
			fmt.Println("\nStopping the manager, fake Google, kube-controller-manager, kube-apiserver and etcd...")
			stack.Down()
			fmt.Println("Stopped; nothing left running.")
		}
	})
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "\ndemo failed: "+format+"\n", args...)
	if stack != nil {
		fmt.Fprintf(os.Stderr, "manager log: %s\n", stack.ManagerLog)
	}
	down()
	os.Exit(1)
}

func step(n int, title string, fn func()) {
	fmt.Printf("\n[%d/7] %s\n", n, title)
	t := time.Now()
	fn()
	fmt.Printf("      (%.1fs)\n", time.Since(t).Seconds())
}

// kubectl shows the command, as a user would type it, and its output.
func kubectl(args ...string) {
	fmt.Printf("  $ kubectl %s\n", strings.Join(args, " "))
	out, err := stack.Run(args...)
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line != "" {
			fmt.Println("    " + line)
		}
	}
	if err != nil {
		fail("%v", err)
	}
}

// apply applies manifests, showing kubectl's output.
func apply(manifests string) {
	out, err := stack.RunInput(manifests, "apply", "-f", "-")
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line != "" {
			fmt.Println("    " + line)
		}
	}
	if err != nil {
		fail("kubectl apply: %v", err)
	}
}

// secret creates a Secret without showing its values.
func secret(ns, name string, data map[string]string) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, "--from-file="+k+"=...")
	}
	slices.Sort(keys)
	fmt.Printf("  $ kubectl create secret generic -n %s %s %s\n", ns, name, strings.Join(keys, " "))
	js, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]string{"name": name, "namespace": ns}, "stringData": data})
	apply(string(js))
}

func main() {
	root, err := k8sbin.RepoRoot()
	if err != nil {
		fail("%v", err)
	}
	defaultBin, err := k8sbin.Dir(root)
	if err != nil {
		fail("%v", err)
	}
	// Not bin/demo: that is the demo binary itself (make demo builds it there).
	dir := flag.String("dir", filepath.Join(root, "bin", "demo-state"), "Directory for kubeconfigs and logs (emptied first).")
	managerBin := flag.String("manager", filepath.Join(root, "bin", "manager"), "The manager binary.")
	k8sBin := flag.String("k8s-bin", defaultBin, "Directory with kube-apiserver, etcd, kubectl and kube-controller-manager.")
	flag.Parse()
	_ = os.RemoveAll(*dir)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		down()
		os.Exit(130)
	}()

	step(1, "Starting etcd, kube-apiserver and kube-controller-manager on loopback; applying the CRD and RBAC (config/local); starting a fake Google token server and the manager as "+localcluster.ManagerUser, func() {
		var err error
		stack, err = devstack.Up(devstack.Options{
			Root: root, Dir: *dir, BinDir: *k8sBin, ManagerBin: *managerBin,
		})
		if err != nil {
			fail("%v", err)
		}
		fmt.Printf("    API server %s, fake Google %s\n", stack.Host, stack.Google.URL())
	})

	step(2, "Applying config/samples: the OAuth client Secret, the refresh-token Secret and the GoogleOAuthGrant 'analytics'", func() {
		kubectl("apply", "-n", "default", "-k", filepath.Join(root, "config", "samples"))
	})

	step(3, "Waiting for the grant to be Ready: the manager trades the refresh token for an access token", func() {
		kubectl("wait", "-n", "default", "--for=condition=Ready", "--timeout=60s", "googleoauthgrant/analytics")
		kubectl("get", "googleoauthgrants", "-A")
		fmt.Println("  The derived Secret's keys (pods mount it and read access_token or token.json):")
		kubectl("get", "secret", "-n", "default", "analytics-access-token", "-o", `go-template={{range $k, $v := .data}}{{$k}}{{"\n"}}{{end}}`)
	})

	step(4, "Revoking the refresh token at (fake) Google, as a user would at myaccount.google.com, then forcing a refresh", func() {
		fmt.Printf("  $ curl -d token=<refresh token> %s\n", stack.Google.RevokeURL())
		resp, err := http.PostForm(stack.Google.RevokeURL(), url.Values{"token": {devstack.SampleRefreshToken}})
		if err != nil {
			fail("revoking: %v", err)
		}
		resp.Body.Close()
		fmt.Printf("    HTTP %d\n", resp.StatusCode)
		kubectl("annotate", "-n", "default", "googleoauthgrant/analytics", "--overwrite",
			"oauth.grantkeeper.dev/refresh-requested-at="+time.Now().UTC().Format(time.RFC3339))
		kubectl("wait", "-n", "default", "--for=condition=Revoked", "--timeout=60s", "googleoauthgrant/analytics")
		kubectl("get", "googleoauthgrants", "-n", "default")
		kubectl("get", "googleoauthgrant", "-n", "default", "analytics", "-o", `jsonpath=Revoked={.status.conditions[?(@.type=="Revoked")].status}: {.status.conditions[?(@.type=="Revoked")].message}{"\n"}`)
	})

	step(5, "Sharing one OAuth client: a ClusterGoogleOAuthClient whose Secret lives in one namespace, used by grants in two others (team-a by label, team-b by name)", func() {
		kubectl("create", "namespace", "oauth-clients")
		secret("oauth-clients", "analytics-app", map[string]string{"client_id": devstack.SampleClientID, "client_secret": devstack.SampleClientSecret})
		manifests := `apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: ClusterGoogleOAuthClient
metadata: {name: analytics-app}
spec:
  secretRef: {name: analytics-app, namespace: oauth-clients}
  namespaceSelector: {matchLabels: {analytics: "true"}}
  namespaces: [team-b]
`
		for _, ns := range []string{"team-a", "team-b"} {
			kubectl("create", "namespace", ns)
			secret(ns, "customer-refresh-token", map[string]string{"refresh_token": stack.Google.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope)})
			manifests += fmt.Sprintf(`---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: customer, namespace: %s}
spec:
  clientRef: {kind: ClusterGoogleOAuthClient, name: analytics-app}
  refreshTokenSecretRef: {name: customer-refresh-token}
`, ns)
		}
		kubectl("label", "namespace", "team-a", "analytics=true")
		fmt.Print("  $ kubectl apply -f - <<EOF\n" + manifests + "  EOF\n")
		apply(manifests)
		kubectl("wait", "--for=condition=Ready", "--timeout=60s", "clustergoogleoauthclient/analytics-app")
		kubectl("wait", "-n", "team-a", "--for=condition=Ready", "--timeout=60s", "googleoauthgrant/customer")
		kubectl("wait", "-n", "team-b", "--for=condition=Ready", "--timeout=60s", "googleoauthgrant/customer")
		kubectl("get", "clustergoogleoauthclients")
		kubectl("get", "googleoauthgrants", "-A")
		fmt.Println("  Removing team-a's label: its grant stops using the client (and keeps its last token until it expires):")
		kubectl("label", "namespace", "team-a", "analytics-")
		kubectl("wait", "-n", "team-a", "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=ClientNotAllowed", "--timeout=60s", "googleoauthgrant/customer")
		kubectl("get", "googleoauthgrants", "-A")
	})

	consentLink := ""
	step(6, "Consent links: the manager restarted with --consent-bind-address; a grant without a refresh token asks its account owner to authorize in a browser", func() {
		consentLink = consentStep(root)
	})

	step(7, "Done", func() {
		fmt.Printf("  Walkthrough finished in %.0fs. Try it yourself:\n", time.Since(start).Seconds())
		fmt.Printf("    export KUBECONFIG=%s\n", stack.AdminKubeconfig)
		fmt.Printf("    %s/kubectl get googleoauthgrants -A\n", stack.BinDir)
		fmt.Printf("    %s/kubectl describe googleoauthgrant -n default analytics\n", stack.BinDir)
		fmt.Printf("  Manager log: %s\n", stack.ManagerLog)
		fmt.Printf("  Open this consent link in a browser (fake Google's consent page; it works once):\n    %s\n", consentLink)
	})

	if os.Getenv("DEMO_EXIT") == "1" {
		down()
		return
	}
	fmt.Println("\nEverything keeps running; press Ctrl-C to stop it all.")
	select {}
}
