// Package metricsauth checks the manager's secure metrics endpoint against a real API server:
// HTTPS, a TokenReview and a SubjectAccessReview per scrape, as config/rbac grants them. A
// token bound to the metrics-reader ClusterRole gets grantkeeper's metrics; an anonymous
// scrape and a token without the role are refused.
package metricsauth

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/promtext"
	"github.com/grantkeeper/grantkeeper/test/framework/testcert"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
	"github.com/grantkeeper/grantkeeper/test/framework/fixtures"
	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
)

var stack *devstack.Stack

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "metricsauth:", err); return 1 }
	root, err := k8sbin.RepoRoot()
	if err != nil {
		return fail(err)
	}
	binDir, err := k8sbin.Dir(root)
	if err != nil {
		return fail(err)
	}
	work, err := os.MkdirTemp("", "gkmetrics-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	if stack, err = devstack.Up(devstack.Options{Root: root, Dir: filepath.Join(work, "stack"), BinDir: binDir,
		ManagerBin: buildManager(root, work)}); err != nil {
		return fail(err)
	}
	defer stack.Down()
	code := m.Run()
	if code != 0 {
		b, _ := os.ReadFile(stack.ManagerLog)
		fmt.Fprintf(os.Stderr, "--- manager log ---\n%s\n", b)
	}
	return code
}

func buildManager(root, dir string) string {
	out := filepath.Join(dir, "manager")
	if err := gobuild.Build(root, "./cmd/manager", out); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return out
}

func TestMetricsNeedTheReaderRole(t *testing.T) {
	stack.StopManager()
	// The manager as deployed: secure metrics (the default), authenticated as its ServiceAccount,
	// serving a certificate from --metrics-cert-dir that the scrapes verify.
	certDir := t.TempDir()
	caPEM, err := testcert.WriteServing(certDir)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := stack.StartManagerListening("metrics-bind-address", "--metrics-cert-dir="+certDir)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + addr + "/metrics"

	objs := fixtures.Scraper("scrapers", "prometheus-reads-grantkeeper-metrics", "prometheus", "nosy") + "---\n" +
		fixtures.Grant("apps", devstack.SampleClient, "reports", devstack.SampleRefreshToken)
	if out, err := stack.RunInput(objs, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
	stack.MustRun(t, "wait", "-n", "apps", "--for=condition=Ready", "--timeout=60s", "gog/reports")
	token := func(sa string) string {
		return strings.TrimSpace(stack.MustRun(t, "create", "token", sa, "-n", "scrapers", "--duration=10m"))
	}
	reader, nosy := token("prometheus"), token("nosy")

	// The endpoint comes up with the manager: poll until the reader's scrape answers.
	want := `grantkeeper_grant_ready{kind="GoogleOAuthGrant",name="reports",namespace="apps",reason="TokenValid"} 1`
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body, err := promtext.Scrape(url, reader, caPEM, "")
		if err == nil && code == http.StatusOK && strings.Contains(body, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token bound to metrics-reader did not get the grant's metrics: code %d, err %v, body:\n%.2000s", code, err, body)
		}
		<-time.After(500 * time.Millisecond) // poll interval
	}

	const forged = "forged-token-for-the-metrics-test"
	for _, c := range []struct {
		who, token string
		want       int
	}{
		{"an anonymous scrape", "", http.StatusUnauthorized},
		{"a token without the metrics-reader role", nosy, http.StatusForbidden},
		// controller-runtime's filter answers 500 when the TokenReview rejects the token.
		{"a forged token", forged, http.StatusInternalServerError},
	} {
		code, body, err := promtext.Scrape(url, c.token, caPEM, "")
		if err != nil {
			t.Fatalf("%s: %v", c.who, err)
		}
		if code != c.want || strings.Contains(body, "grantkeeper_") {
			t.Errorf("%s: got %d (want %d), body:\n%.500s", c.who, code, c.want, body)
		}
	}
	log, err := os.ReadFile(stack.ManagerLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{reader, nosy, forged} {
		if strings.Contains(string(log), tok) {
			t.Errorf("the manager logged a scraper's bearer token")
		}
	}
	// Plain HTTP is not served at all.
	if resp, err := http.Get(strings.Replace(url, "https:", "http:", 1)); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Errorf("metrics served over plain HTTP")
		}
		resp.Body.Close()
	}
}

func k8sbinGo(root string, args ...string) *exec.Cmd {
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	return cmd
}
