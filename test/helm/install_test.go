package helm

import (
	"bytes"
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/fixtures"
	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
	"github.com/grantkeeper/grantkeeper/test/framework/localcluster"
)

// One control plane and one manager binary for every install case of the package.
var (
	clusterOnce sync.Once
	cluster     *localcluster.Cluster
	clusterErr  error
	workDir     string
	managerBin  string
)

func liveCluster(t *testing.T) *localcluster.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		if workDir, clusterErr = os.MkdirTemp("", "grantkeeper-helm-"); clusterErr != nil {
			return
		}
		managerBin = filepath.Join(workDir, "manager")
		if err := gobuild.Build(root, "./cmd/manager", managerBin); err != nil {
			clusterErr = err
			return
		}
		binDir, err := k8sbin.Dir(root)
		if err != nil {
			clusterErr = err
			return
		}
		cluster, clusterErr = localcluster.Start(binDir, filepath.Join(workDir, "cluster"))
	})
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return cluster
}

func stopCluster() {
	if cluster != nil {
		cluster.Stop()
	}
	if workDir != "" {
		_ = os.RemoveAll(workDir)
	}
}

func kubectlAdmin(t *testing.T, c *localcluster.Cluster, stdin string, args ...string) string {
	t.Helper()
	cmd := c.Kubectl(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// managerCommand is the chart's manager container (its args and the env it sets from
// values) as a local process: the ports move to free loopback ones, the webhook's
// certificate directory to a temporary one, and what a Pod gets from Kubernetes is given
// explicitly (the ServiceAccount's identity, the namespace, the leader-election namespace).
// Google is the fake.
func managerCommand(t *testing.T, c *localcluster.Cluster, manifest map[string]*unstructured.Unstructured, google *fakegoogle.Server) (*exec.Cmd, string) {
	t.Helper()
	d := manifest["Deployment/grantkeeper-system/grantkeeper-controller-manager"]
	if d == nil {
		t.Fatal("the release has no manager Deployment")
	}
	ctr := field(t, d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	if sa := field(t, d, "spec", "template", "spec", "serviceAccountName"); sa != localcluster.ManagerServiceAccount {
		t.Fatalf("the Deployment runs as %v; the test's kubeconfig is %s's", sa, localcluster.ManagerUser)
	}
	probe := ""
	var args []string
	bind := regexp.MustCompile(`^(--[a-z-]+-bind-address)=:[0-9]+$`)
	for _, a := range ctr["args"].([]any) {
		a := a.(string)
		if m := bind.FindStringSubmatch(a); m != nil {
			addr := freeAddr(t)
			if m[1] == "--health-probe-bind-address" {
				probe = addr
			}
			a = m[1] + "=" + addr
		}
		args = append(args, a)
	}
	if probe == "" {
		t.Fatalf("no --health-probe-bind-address in %v", args)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	args = append(args, "--kubeconfig="+c.ManagerKubeconfig, "--leader-election-namespace=grantkeeper-system",
		"--webhook-port="+port, "--webhook-cert-dir="+t.TempDir(),
		"--token-url="+google.TokenURL(), "--revoke-url="+google.RevokeURL())
	cmd := exec.Command(managerBin, args...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE=grantkeeper-system")
	for _, e := range ctr["env"].([]any) {
		if e := e.(map[string]any); e["value"] != nil {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s", e["name"], e["value"]))
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, probe
}

// TestInstallRuns installs the chart on a real API server with each documented combination
// of values (issue 32), runs the manager as the chart's ServiceAccount with the Deployment's
// arguments, and requires: ready within a minute, no "forbidden" and no error-level line in
// its log (the first case is a fresh install), a grant in a watched namespace Ready and one
// in an unwatched namespace untouched.
func TestInstallRuns(t *testing.T) {
	c := liveCluster(t)
	google := fakegoogle.New()
	client := fixtures.Client{ID: "install-client.apps.googleusercontent.com", Secret: "install-secret"}
	google.AddClient(client.ID, client.Secret)
	google.AddRefreshToken("1//install-rt", client.ID, "https://www.googleapis.com/auth/drive.file")
	if err := google.Start(); err != nil {
		t.Fatal(err)
	}
	defer google.Close()
	helmEnv := []string{"KUBECONFIG=" + c.AdminKubeconfig, "HELM_CACHE_HOME=" + filepath.Join(workDir, "helm-cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(workDir, "helm-config"), "HELM_DATA_HOME=" + filepath.Join(workDir, "helm-data")}
	kubectlAdmin(t, c, "", "create", "namespace", "apps")
	kubectlAdmin(t, c, "", "create", "namespace", "other")

	consent := "consent.enabled=true,consent.baseURL=https://consent.example.com"
	for i, tc := range []struct {
		name, set string
		watched   bool // only apps is watched
	}{
		{"watchNamespaces, fresh install", "watchNamespaces={apps}", true},
		{"watchNamespaces with consent links", "watchNamespaces={apps}," + consent, true},
		{"watchNamespaces with the security-event receiver", "watchNamespaces={apps},risc.enabled=true", true},
		{"watchNamespaces without injection", "watchNamespaces={apps},injection.enabled=false", true},
		{"every namespace, every server", consent + ",risc.enabled=true", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			up := exec.Command(helm, "upgrade", "--install", "grantkeeper", "charts/grantkeeper", "--namespace", "grantkeeper-system",
				"--create-namespace", "--set", tc.set)
			up.Dir, up.Env = root, append(os.Environ(), helmEnv...)
			if out, err := up.CombinedOutput(); err != nil {
				t.Fatalf("helm upgrade --install --set %s: %v: %s", tc.set, err, out)
			}
			get := exec.Command(helm, "get", "manifest", "grantkeeper", "--namespace", "grantkeeper-system")
			get.Env = append(os.Environ(), helmEnv...)
			out, err := get.Output()
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				// The CRD comes with the chart: grants only after the first install.
				kubectlAdmin(t, c, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/googleoauthgrants.oauth.grantkeeper.dev")
				kubectlAdmin(t, c, fixtures.Grant("apps", client, "watched", "1//install-rt")+"---\n"+
					fixtures.Grant("other", client, "unwatched", "1//install-rt"), "apply", "-f", "-")
			}
			// The fresh install runs the chart's two replicas: both find the certificate
			// Secret empty and write it at once.
			replicas := 1
			if i == 0 {
				replicas = 2
			}
			manifest := objects(t, string(out))
			var stops []func()
			var probes []string
			var logs []*bytes.Buffer
			for r := 0; r < replicas; r++ {
				cmd, probe := managerCommand(t, c, manifest, google)
				log := &bytes.Buffer{}
				logs = append(logs, log)
				w := &syncWriter{w: log}
				cmd.Stdout, cmd.Stderr = w, w
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				stopped := false
				stop := func() {
					if !stopped {
						stopped = true
						_ = cmd.Process.Signal(syscall.SIGTERM)
						_ = cmd.Wait()
					}
				}
				defer func() {
					stop()
					if t.Failed() {
						t.Logf("manager %d's log:\n%s", r, w.String())
					}
				}()
				stops = append(stops, stop)
				probes = append(probes, probe)
			}
			for r, probe := range probes {
				ready := poll(60*time.Second, func() bool {
					resp, err := http.Get("http://" + probe + "/readyz")
					if err != nil {
						return false
					}
					resp.Body.Close()
					return resp.StatusCode == http.StatusOK
				})
				if !ready {
					t.Errorf("replica %d not ready within a minute (--set %s)", r, tc.set)
				}
			}
			readyIn := time.Since(start)
			status := func(ns, name string) string {
				return kubectlAdmin(t, c, "", "get", "googleoauthgrant", "-n", ns, name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			}
			if !poll(60*time.Second, func() bool { return status("apps", "watched") == "True" }) {
				t.Errorf("the grant in the watched namespace is not Ready: %s", kubectlAdmin(t, c, "", "get", "gog", "-n", "apps", "watched", "-o", "yaml"))
			}
			if tc.watched {
				if s := kubectlAdmin(t, c, "", "get", "googleoauthgrant", "-n", "other", "unwatched", "-o", "jsonpath={.status}"); s != "" {
					t.Errorf("the grant in an unwatched namespace was touched: status %s", s)
				}
			} else if !poll(60*time.Second, func() bool { return status("other", "unwatched") == "True" }) {
				t.Errorf("watching every namespace, the grant in other is not Ready")
			}
			for _, stop := range stops {
				stop()
			}
			for _, log := range logs {
				for _, line := range strings.Split(log.String(), "\n") {
					if strings.Contains(strings.ToLower(line), "forbidden") {
						t.Errorf("forbidden: %s", line)
					}
					// Two replicas starting together both try to create the Lease; client-go
					// logs the loser's "already exists" at error level and then follows the
					// winner, which is leader election working, not a fault.
					benign := strings.Contains(line, "Error initially creating lease lock") && strings.Contains(line, "already exists")
					if !benign && (strings.Contains(line, `"level":"error"`) || regexp.MustCompile(`^E\d{4} `).MatchString(line)) {
						t.Errorf("error-level line: %s", line)
					}
				}
			}
			t.Logf("%s: ready and the grant Ready %s after helm upgrade started", tc.name, readyIn.Round(100*time.Millisecond))
		})
	}
}

func poll(timeout time.Duration, ok func() bool) bool {
	return wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return ok(), nil }) == nil
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
