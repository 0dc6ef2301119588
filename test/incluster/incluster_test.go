// Package incluster runs the manager the way users run it: the image `make image` builds,
// imported into containerd on a real kubelet, deployed by config/default (through the
// config/local-node overlay) with its ServiceAccount token from the API server, behind
// probes and the restricted Pod Security level. Needs root, like test/pods, and shares its
// skip and CI rules. `make test-incluster` runs only this.
package incluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/fixtures"
	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/helmbin"
	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
	"github.com/grantkeeper/grantkeeper/test/framework/localcluster"
	"github.com/grantkeeper/grantkeeper/test/framework/localnode"
	"github.com/grantkeeper/grantkeeper/test/framework/promtext"
	"github.com/grantkeeper/grantkeeper/test/framework/testcert"
)

const (
	clientID     = "123456789012-incluster.apps.googleusercontent.com"
	clientSecret = "GOCSPX-incluster-client-secret"
	scope        = "https://www.googleapis.com/auth/analytics.readonly"
	managerImage = "grantkeeper.local/manager:local" // as config/local-node names it
	pauseImage   = "grantkeeper.local/pause:test"
	namespace    = localcluster.ManagerNamespace
	deployment   = "grantkeeper-controller-manager"
	leaseName    = "grantkeeper.oauth.grantkeeper.dev"
)

var client = fixtures.Client{ID: clientID, Secret: clientSecret}

var (
	cluster    *localcluster.Cluster
	google     *fakegoogle.Server
	googleSrv  *http.Server
	googleURL  string
	googleCA   []byte
	root       string
	work       string
	skipReason string
	figures    []string
	// metricsCA signed the metrics endpoint's certificate, for metricsServerName (deploy).
	metricsCA []byte
)

const metricsServerName = "grantkeeper-metrics.grantkeeper-system.svc"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	if skipReason = localnode.Ready(os.Stdout); skipReason != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "incluster: cannot run the in-cluster test in CI: %s\n", skipReason)
			return 1
		}
		fmt.Printf("incluster: SKIPPING the in-cluster test (not root, or no apt-get): %s\n", skipReason)
		return m.Run()
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "incluster:", err); return 1 }
	began := time.Now()
	var err error
	if root, err = k8sbin.RepoRoot(); err != nil {
		return fail(err)
	}
	binDir, err := k8sbin.Dir(root)
	if err != nil {
		return fail(err)
	}
	if work, err = os.MkdirTemp("", "gkic-"); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)

	// The manager image exactly as `make image` builds it; the pause image the same way.
	managerBin := filepath.Join(work, "manager")
	if err := gobuild.Image(root, "./cmd/manager", managerBin); err != nil {
		return fail(err)
	}
	managerTar := filepath.Join(work, "manager.tar")
	if err := localnode.PackImage(root, managerBin, managerImage, managerTar); err != nil {
		return fail(err)
	}
	tarballs, err := localnode.BuildImages(root, work, map[string]string{"./examples/pause": pauseImage,
		"./cmd/metadata-server": sidecarImage, "./examples/adc": adcImage}) // the last two: inject_test.go
	if err != nil {
		return fail(err)
	}
	// The same image under a second tag, for the Helm upgrade.
	managerV2 := filepath.Join(work, "manager-v2.tar")
	if err := localnode.PackImage(root, managerBin, "grantkeeper.local/manager:v2", managerV2); err != nil {
		return fail(err)
	}
	tarballs = append(tarballs, managerTar, managerV2)
	built := time.Now()
	// The images are built before the lock, while another suite may still hold the node.
	unlock, err := localnode.Lock() // one local node at a time on this machine
	if err != nil {
		return fail(err)
	}
	defer unlock()
	locked := time.Now()

	if err := localnode.CreateBridge(); err != nil {
		return fail(err)
	}
	defer func() { _ = localnode.DeleteBridge() }()
	logf, err := os.Create(filepath.Join(work, "node.log"))
	if err != nil {
		return fail(err)
	}
	defer logf.Close()
	if cluster, err = localcluster.StartWith(binDir, filepath.Join(work, "cp"), localcluster.Options{
		InCluster: true, BindAddress: localnode.Gateway}); err != nil { // a free port: see apiServerPort
		return fail(err)
	}
	defer cluster.Stop()
	if err := cluster.StartControllerManager(logf); err != nil {
		return fail(err)
	}

	// Fake Google over HTTPS on the bridge, with a private CA the manager trusts the way the
	// README documents (SSL_CERT_DIR).
	if err := startGoogle(); err != nil {
		return fail(err)
	}
	defer googleSrv.Close()

	node, err := localnode.Start(localnode.Options{Dir: filepath.Join(work, "n"), KubeletBin: filepath.Join(binDir, "kubelet"),
		Kubeconfig: cluster.AdminKubeconfig, PauseImage: pauseImage, Images: tarballs, SyncInterval: 2 * time.Second,
		Log: logf, PodNetwork: true})
	if err != nil {
		return fail(err)
	}
	figures = append(figures, fmt.Sprintf("set-up: images %s, waiting for the node lock %s, control plane and node %s",
		built.Sub(began).Round(100*time.Millisecond), locked.Sub(built).Round(100*time.Millisecond), time.Since(locked).Round(100*time.Millisecond)))
	code := m.Run()
	if len(figures) > 0 {
		fmt.Printf("incluster: %s\n", strings.Join(figures, "; "))
	}
	node.Stop()
	if left := localnode.Mounts(node.Dir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "incluster: mounts left after tear-down: %v\n", left)
		code = 1
	}
	if code != 0 {
		b, _ := os.ReadFile(logf.Name())
		if len(b) > 30000 {
			b = b[len(b)-30000:]
		}
		fmt.Fprintf(os.Stderr, "--- node log (tail) ---\n%s\n", b)
	}
	return code
}

func startGoogle() error {
	google = fakegoogle.New()
	google.AddClient(clientID, clientSecret)
	// 40-second tokens refreshed 20 s before expiry: several refreshes happen during a test.
	google.SetLifetime(40 * time.Second)
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(localnode.Gateway, []net.IP{net.ParseIP(localnode.Gateway)}, nil)
	if err != nil {
		return err
	}
	googleCA = certPEM
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", localnode.Gateway+":0")
	if err != nil {
		return err
	}
	googleURL = "https://" + l.Addr().String()
	srv := &http.Server{Handler: apiCalls.wrap(google.Handler()), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	googleSrv = srv
	return nil
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectlErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func kubectlErr(args ...string) (string, error) {
	cmd := cluster.Kubectl(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

func apply(t *testing.T, manifest string) {
	t.Helper()
	cmd := cluster.Kubectl("apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
}

// deploy applies config/local-node plus what only this test knows: fake Google's URLs and its
// private CA, added the way the README documents (a ConfigMap mounted as a directory named
// by SSL_CERT_DIR).
func deploy(t *testing.T) {
	t.Helper()
	dir := filepath.Join(work, "overlay")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), googleCA, 0o644); err != nil {
		t.Fatal(err)
	}
	// The metrics endpoint's certificate, as a user would give it (a cert-manager
	// Certificate for the Service's name, mounted with --metrics-cert-dir), so the scrape
	// test verifies it instead of skipping verification.
	ca, err := testcert.WriteServing(dir, metricsServerName)
	if err != nil {
		t.Fatal(err)
	}
	metricsCA = ca
	base, err := filepath.Rel(dir, filepath.Join(root, "config", "local-node")) // kustomize wants a relative path
	if err != nil {
		t.Fatal(err)
	}
	kust := fmt.Sprintf(`resources:
- %s
configMapGenerator:
- name: private-ca
  namespace: %[2]s
  files: [ca.crt]
secretGenerator:
- name: metrics-cert
  namespace: %[2]s
  type: kubernetes.io/tls
  files: [tls.crt, tls.key]
patches:
- target: {kind: Deployment, name: %s}
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --token-url=%s/token
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --revoke-url=%s/revoke
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {name: SSL_CERT_DIR, value: /etc/grantkeeper/ca}
    - op: add
      path: /spec/template/spec/containers/0/volumeMounts/-
      value: {name: private-ca, mountPath: /etc/grantkeeper/ca, readOnly: true}
    - op: add
      path: /spec/template/spec/volumes/-
      value: {name: private-ca, configMap: {name: private-ca}}
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --metrics-cert-dir=/etc/grantkeeper/metrics-cert
    - op: add
      path: /spec/template/spec/containers/0/volumeMounts/-
      value: {name: metrics-cert, mountPath: /etc/grantkeeper/metrics-cert, readOnly: true}
    - op: add
      path: /spec/template/spec/volumes/-
      value: {name: metrics-cert, secret: {secretName: metrics-cert}}
# The API server's port: a free one, not config/local-node's 6443 (env merges by name).
- target: {kind: Deployment, name: %[3]s}
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: %[3]s, namespace: %[2]s}
    spec: {template: {spec: {containers: [{name: manager, env: [{name: KUBERNETES_SERVICE_PORT, value: %[6]q}]}]}}}
`, base, namespace, deployment, googleURL, googleURL, apiServerPort(t))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "apply", "--server-side", "-k", dir)
	kubectl(t, "-n", namespace, "rollout", "status", "deployment/"+deployment, "--timeout=180s")
}

type podInfo struct {
	Name, IP string
	Ready    bool
}

func managerPods(t *testing.T) []podInfo {
	t.Helper()
	var out []podInfo
	for _, p := range allManagerPods(t) {
		if p.DeletionTimestamp != nil {
			continue
		}
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		out = append(out, podInfo{Name: p.Name, IP: p.Status.PodIP, Ready: ready})
	}
	return out
}

// allManagerPods lists the manager's Pods, terminating ones included.
func allManagerPods(t *testing.T) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := json.Unmarshal([]byte(kubectl(t, "-n", namespace, "get", "pods", "-l", "control-plane=controller-manager", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// managerPodsGone reports whether no manager Pod is left, not even a terminating one: a
// terminating Pod's manager may still serve (its graceful shutdown), the webhook included.
func managerPodsGone(t *testing.T) bool {
	t.Helper()
	return len(allManagerPods(t)) == 0
}

func leaseHolder(t *testing.T) string {
	t.Helper()
	out, _ := kubectlErr("-n", namespace, "get", "lease", leaseName, "-o", "jsonpath={.spec.holderIdentity}")
	return strings.TrimSpace(out)
}

// poll calls ok until it returns true or the deadline passes.
func poll(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-time.After(500 * time.Millisecond) // poll interval
	}
}

func holderPod(holder string, pods []podInfo) string {
	for _, p := range pods {
		if strings.HasPrefix(holder, p.Name+"_") {
			return p.Name
		}
	}
	return ""
}

// tokenWatcher watches the derived Secret and records every access token it sees and any
// moment it held an expired one: an event carrying an expired token, and a token that
// expired before the next event replaced it (or before the watch stopped) — a refresh that
// comes late writes a fresh token, so only the gap before it shows the lateness.
type tokenWatcher struct {
	tokens  map[string]bool
	expired []string
	events  int
	done    chan struct{}
}

func watchToken(t *testing.T, ns, name string) (*tokenWatcher, func()) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := cs.CoreV1().Secrets(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	tw := &tokenWatcher{tokens: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(tw.done)
		var held time.Time // the expiry of the token the Secret holds
		gap := func(now time.Time) {
			if !held.IsZero() && now.After(held) {
				tw.expired = append(tw.expired, fmt.Sprintf("held a token that expired at %s until %s", held.Format(time.RFC3339), now.Format(time.RFC3339Nano)))
			}
		}
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Secret)
			if !ok {
				continue
			}
			now := time.Now()
			tw.events++
			tw.tokens[string(s.Data["access_token"])] = true
			gap(now)
			exp, err := time.Parse(time.RFC3339, string(s.Data["expiry"]))
			if err != nil || !exp.After(now) {
				tw.expired = append(tw.expired, fmt.Sprintf("%s at %s", s.Data["expiry"], now.Format(time.RFC3339)))
			}
			held = exp
		}
		gap(time.Now())
	}()
	return tw, func() { w.Stop(); cancel(); <-tw.done }
}

// TestManagerRunsInCluster: both replicas become Ready, one holds the Lease, a grant turns
// Ready through the in-cluster manager, and deleting the leader hands over with no expired
// token seen and no duplicate token request; logs hold no secret; the Pods run as non-root
// on a read-only root file system, admitted by the restricted Pod Security level.
func TestManagerRunsInCluster(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	start := time.Now()
	deploy(t)
	var pods []podInfo
	poll(t, "two Ready manager Pods", 120*time.Second, func() bool {
		pods = managerPods(t)
		return len(pods) == 2 && pods[0].Ready && pods[1].Ready
	})
	figures = append(figures, fmt.Sprintf("apply to 2 Ready replicas: %s", time.Since(start).Round(time.Second)))
	var leader string
	poll(t, "a Lease holder", 60*time.Second, func() bool { leader = holderPod(leaseHolder(t), pods); return leader != "" })

	// Each Pod authenticates with a projected ServiceAccount token, not a mounted Secret.
	var pod corev1.Pod
	if err := json.Unmarshal([]byte(kubectl(t, "-n", namespace, "get", "pod", leader, "-o", "json")), &pod); err != nil {
		t.Fatal(err)
	}
	projected := false
	for _, v := range pod.Spec.Volumes {
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					projected = true
				}
			}
		}
	}
	if !projected || pod.Spec.ServiceAccountName != localcluster.ManagerServiceAccount {
		t.Errorf("the manager Pod should run as %s with a projected token; volumes %+v", localcluster.ManagerServiceAccount, pod.Spec.Volumes)
	}

	// Pod Security: the namespace enforces restricted, and the API server refuses what it forbids.
	out, err := kubectlErr("-n", namespace, "run", "privileged-probe", "--image="+pauseImage, "--dry-run=server",
		`--overrides={"spec":{"containers":[{"name":"privileged-probe","image":"`+pauseImage+`","securityContext":{"privileged":true}}]}}`)
	if err == nil || !strings.Contains(err.Error(), `violates PodSecurity "restricted`) {
		t.Errorf("a privileged Pod in %s should be refused by the restricted level: %v %s", namespace, err, out)
	}

	rt := google.NewRefreshToken(clientID, scope)
	apply(t, fixtures.Grant("apps", client, "reports", rt, "refreshBefore: 20s"))
	kubectl(t, "wait", "-n", "apps", "--for=condition=Ready", "--timeout=90s", "gog/reports")
	watcher, stopWatch := watchToken(t, "apps", "reports-access-token")
	defer stopWatch()
	// Logs of the leader before it goes.
	leaderLog := kubectl(t, "-n", namespace, "logs", leader)

	// Let one refresh happen under the first leader, then delete it.
	poll(t, "a refresh by the first leader", 60*time.Second, func() bool { return google.Requests(rt) >= 2 })
	deleted := time.Now()
	kubectl(t, "-n", namespace, "delete", "pod", leader, "--wait=false")
	// The surviving replica, or the ReplicaSet's replacement, takes over.
	var newLeader string
	poll(t, "another replica to take the Lease", 60*time.Second, func() bool {
		newLeader = holderPod(leaseHolder(t), managerPods(t))
		return newLeader != "" && newLeader != leader
	})
	figures = append(figures, fmt.Sprintf("leader handover after Pod deletion: %s", time.Since(deleted).Round(100*time.Millisecond)))
	before := google.Requests(rt)
	poll(t, "two refreshes by the new leader", 90*time.Second, func() bool { return google.Requests(rt) >= before+2 })
	kubectl(t, "wait", "-n", "apps", "--for=condition=Ready", "--timeout=30s", "gog/reports")
	stopWatch()

	if len(watcher.expired) > 0 {
		t.Errorf("a watcher saw an expired token in the derived Secret: %v", watcher.expired)
	}
	// The watcher saw the refreshes: the token when it started and the new leader's two.
	if watcher.events < 3 || len(watcher.tokens) < 3 {
		t.Errorf("the watcher saw %d events and %d distinct tokens, want at least 3 of each: it may not be watching", watcher.events, len(watcher.tokens))
	}
	times := google.RequestTimes(rt)
	for i := 1; i < len(times); i++ {
		// Refreshes are due about 20 s apart; two requests within 5 s is a duplicate.
		if gap := times[i].Sub(times[i-1]); gap < 5*time.Second {
			t.Errorf("duplicate token requests %s apart (requests at %v)", gap, times)
		}
	}
	figures = append(figures, fmt.Sprintf("token requests: %d, tokens seen by the watcher: %d, expired-token observations: %d", len(times), len(watcher.tokens), len(watcher.expired)))

	// No secret in any Pod's logs.
	logs := leaderLog
	for _, p := range managerPods(t) {
		logs += kubectl(t, "-n", namespace, "logs", p.Name)
	}
	if !strings.Contains(logs, "Successfully acquired lease") {
		t.Errorf("the logs do not show the leader election; are they the manager's?\n%.3000s", logs)
	}
	secrets := []string{clientSecret, rt}
	for tok := range watcher.tokens {
		if tok != "" {
			secrets = append(secrets, tok)
		}
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret value appears in kubectl logs of the manager Pods")
		}
	}

	// The containers' processes, seen from the host: UID 65532 and a read-only root.
	procs := managerProcesses(t)
	if len(procs) != 2 {
		t.Errorf("want 2 manager processes on the node, found %d", len(procs))
	}
	for _, p := range procs {
		if !strings.HasPrefix(p.uid, "65532\t") {
			t.Errorf("manager process %s runs as uid %q, want 65532", p.pid, p.uid)
		}
		if !p.rootRO {
			t.Errorf("manager process %s has a writable root file system", p.pid)
		}
	}
}

type proc struct {
	pid, uid string
	rootRO   bool
}

// managerProcesses finds the containers' manager processes (command /manager, as the
// Deployment runs it) and reads their user and root mount from /proc.
func managerProcesses(t *testing.T) []proc {
	t.Helper()
	var out []proc
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmdline), "/manager\x00") || !strings.Contains(string(cmdline), "--token-url="+googleURL) {
			continue
		}
		p := proc{pid: e.Name()}
		status, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:\t"); ok {
				p.uid = v
			}
		}
		mi, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		for _, line := range strings.Split(string(mi), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && f[4] == "/" {
				p.rootRO = strings.HasPrefix(f[5], "ro")
			}
		}
		out = append(out, p)
	}
	return out
}

// TestMetricsInCluster: a scrape of a manager Pod with a token bound to metrics-reader gets
// grantkeeper's metrics; anonymous and unprivileged scrapes are refused.
func TestMetricsInCluster(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if len(managerPods(t)) == 0 || metricsCA == nil {
		deploy(t)
	}
	apply(t, fixtures.Scraper("monitoring", "prometheus-grantkeeper-metrics", "prometheus", "nosy"))
	reader := strings.TrimSpace(kubectl(t, "create", "token", "prometheus", "-n", "monitoring"))
	nosy := strings.TrimSpace(kubectl(t, "create", "token", "nosy", "-n", "monitoring"))
	var pods []podInfo
	poll(t, "Ready manager Pods", 120*time.Second, func() bool {
		pods = managerPods(t)
		return len(pods) > 0 && pods[0].Ready && pods[0].IP != ""
	})
	url := fmt.Sprintf("https://%s:8443/metrics", pods[0].IP)
	// Verified as Prometheus would: the CA that signed the mounted certificate, and the
	// Service's name (the Pod is dialled by IP).
	otherCA, err := testcert.WriteServing(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := promtext.Scrape(url, "", otherCA, metricsServerName); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA: %v, want a certificate error", err)
	}
	get := func(token string) (int, string) {
		code, body, err := promtext.Scrape(url, token, metricsCA, metricsServerName)
		if err != nil {
			t.Fatalf("scraping %s: %v", url, err)
		}
		return code, body
	}
	if code, body := get(reader); code != http.StatusOK || !strings.Contains(body, "grantkeeper_") {
		t.Errorf("a metrics-reader token got %d, body:\n%.1000s", code, body)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("an anonymous scrape got %d, want 401", code)
	}
	if code, body := get(nosy); code != http.StatusForbidden || strings.Contains(body, "grantkeeper_") {
		t.Errorf("a token without metrics-reader got %d, want 403", code)
	}
}

// helmValues installs the chart as a user would, plus what this local node needs (the image
// imported into containerd, the API server on the bridge, fake Google and its private CA).
func helmValues(t *testing.T, tag string, extra string) string {
	t.Helper()
	v := fmt.Sprintf(`image: {repository: grantkeeper.local/manager, tag: %s, pullPolicy: Never}
extraArgs: [--token-url=%s/token, --revoke-url=%s/revoke]
extraEnv:
- {name: KUBERNETES_SERVICE_HOST, value: %q}
- {name: KUBERNETES_SERVICE_PORT, value: %q}
- {name: SSL_CERT_DIR, value: /etc/grantkeeper/ca}
extraVolumes: [{name: private-ca, configMap: {name: private-ca}}]
extraVolumeMounts: [{name: private-ca, mountPath: /etc/grantkeeper/ca, readOnly: true}]
injection: {image: {repository: grantkeeper.local/metadata-server}}
%s`, tag, googleURL, googleURL, localnode.Gateway, apiServerPort(t), extra)
	path := filepath.Join(work, "values-"+tag+".yaml")
	if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiServerPort is the port the API server listens on (picked free at start).
func apiServerPort(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(cluster.Host)
	if err != nil || u.Port() == "" {
		t.Fatalf("the API server's address %q has no port", cluster.Host)
	}
	return u.Port()
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := helmbin.Find(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(args, "--kubeconfig", cluster.AdminKubeconfig)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestHelmInstallUpgradeUninstall: the chart installs a working manager; an upgrade to a new
// image tag with changed values rolls the Deployment without a token request for grants that
// are not due and without an expired token; uninstall leaves the CRD, the grants and every
// Secret in place.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	// Remove the kustomize install of the tests above (grants first, while a manager runs),
	// if they ran (-run TestHelmInstallUpgradeUninstall runs this test alone).
	_, _ = kubectlErr("delete", "namespace", "apps", "monitoring", "--ignore-not-found", "--wait=true", "--timeout=120s")
	if _, err := os.Stat(filepath.Join(work, "overlay")); err == nil {
		kubectl(t, "delete", "-k", filepath.Join(work, "overlay"), "--ignore-not-found", "--wait=true", "--timeout=180s")
	}
	poll(t, "the kustomize install to go", 120*time.Second, func() bool {
		_, err := kubectlErr("get", "namespace", namespace)
		return err != nil
	})

	// As the README says: the namespace with the restricted Pod Security level, then the chart.
	kubectl(t, "create", "namespace", namespace)
	kubectl(t, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
	caFile := filepath.Join(work, "google-ca.crt")
	if err := os.WriteFile(caFile, googleCA, 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "-n", namespace, "create", "configmap", "private-ca", "--from-file=ca.crt="+caFile)
	helm(t, "install", "grantkeeper", "charts/grantkeeper", "-n", namespace, "-f", helmValues(t, "local", ""), "--wait", "--timeout=3m")
	kubectl(t, "-n", namespace, "rollout", "status", "deployment/"+deployment, "--timeout=120s")
	pods := managerPods(t)
	if len(pods) != 2 {
		t.Fatalf("want 2 manager Pods from the chart, got %+v", pods)
	}

	// Tokens that are not due during the upgrade: one hour.
	google.SetLifetime(time.Hour)
	rt := google.NewRefreshToken(clientID, scope)
	apply(t, fixtures.Grant("helm-apps", client, "reports", rt))
	kubectl(t, "wait", "-n", "helm-apps", "--for=condition=Ready", "--timeout=90s", "gog/reports")
	webhookInjects(t, "helm-apps", "reports") // the chart's webhook, with its own certificate
	if n := google.Requests(rt); n != 1 {
		t.Fatalf("want 1 token request for the new grant, got %d", n)
	}
	watcher, stopWatch := watchToken(t, "helm-apps", "reports-access-token")
	defer stopWatch()
	// And a grant that is due during the upgrade: one-minute tokens refreshed 50 s before
	// they expire (about every 10 s), so refreshes fall inside the upgrade, and its Secret
	// must never hold an expired token meanwhile.
	google.SetLifetime(time.Minute)
	rtSoon := google.NewRefreshToken(clientID, scope)
	apply(t, fixtures.Grant("helm-soon", client, "soon", rtSoon, "refreshBefore: 50s"))
	kubectl(t, "wait", "-n", "helm-soon", "--for=condition=Ready", "--timeout=90s", "gog/soon")
	soonWatcher, stopSoonWatch := watchToken(t, "helm-soon", "soon-access-token")
	defer stopSoonWatch()

	// Upgrade: a new image tag and changed values.
	oldLeader := leaseHolder(t)
	upgradeStart := time.Now()
	helm(t, "upgrade", "grantkeeper", "charts/grantkeeper", "-n", namespace, "-f", helmValues(t, "v2", "maxConcurrentReconciles: 4\nlogLevel: debug\n"), "--wait", "--timeout=3m")
	kubectl(t, "-n", namespace, "rollout", "status", "deployment/"+deployment, "--timeout=120s")
	var newPods []podInfo
	poll(t, "the new leader from the upgraded Pods", 90*time.Second, func() bool {
		newPods = managerPods(t)
		h := leaseHolder(t)
		return h != oldLeader && holderPod(h, newPods) != ""
	})
	upgradeEnd := time.Now()
	var d struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(kubectl(t, "-n", namespace, "get", "deployment", deployment, "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "grantkeeper.local/manager:v2" || !strings.Contains(strings.Join(c.Args, " "), "--max-concurrent-reconciles=4") {
		t.Errorf("the upgrade did not roll the new image and values: %s %v", c.Image, c.Args)
	}
	// The new leader starts its workers and finds nothing due: no token request, for a while.
	leader := holderPod(leaseHolder(t), newPods)
	poll(t, "the new leader's workers", 60*time.Second, func() bool {
		out, _ := kubectlErr("-n", namespace, "logs", leader)
		return strings.Contains(out, "Starting workers")
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if n := google.Requests(rt); n != 1 {
			t.Fatalf("the upgrade caused %d token requests for a grant that was not due", n-1)
		}
		<-time.After(500 * time.Millisecond) // observation window, not synchronisation
	}
	kubectl(t, "wait", "-n", "helm-apps", "--for=condition=Ready", "--timeout=30s", "gog/reports")
	// The due grant is refreshed by the new leader too: one more token after the upgrade.
	soonAfter := google.Requests(rtSoon)
	poll(t, "a refresh of the due grant after the upgrade", 60*time.Second, func() bool { return google.Requests(rtSoon) > soonAfter })
	kubectl(t, "wait", "-n", "helm-soon", "--for=condition=Ready", "--timeout=30s", "gog/soon")
	stopWatch()
	stopSoonWatch()
	if len(watcher.expired) > 0 || len(soonWatcher.expired) > 0 {
		t.Errorf("a watcher saw an expired token during the upgrade: not due %v, due %v", watcher.expired, soonWatcher.expired)
	}
	// The watchers saw something: the not-due grant's one token; the due grant's tokens
	// replaced during the upgrade (one watched before it, more after).
	if watcher.events == 0 || len(watcher.tokens) != 1 {
		t.Errorf("the not-due grant's watcher saw %d events and %d distinct tokens, want its one token", watcher.events, len(watcher.tokens))
	}
	inside := 0
	for _, at := range google.RequestTimes(rtSoon) {
		if at.After(upgradeStart) && at.Before(upgradeEnd) {
			inside++
		}
	}
	if inside == 0 {
		t.Errorf("no refresh of the due grant fell inside the upgrade (%s to %s): requests at %v", upgradeStart.Format(time.RFC3339), upgradeEnd.Format(time.RFC3339), google.RequestTimes(rtSoon))
	}
	if soonWatcher.events < 3 || len(soonWatcher.tokens) < 3 {
		t.Errorf("the due grant's watcher saw %d events and %d distinct tokens, want at least 3 of each (its token before, during and after the upgrade)", soonWatcher.events, len(soonWatcher.tokens))
	}
	figures = append(figures, fmt.Sprintf("helm upgrade: token requests for not-due grants: 0; a due grant refreshed %d times during the %s upgrade, %d tokens watched; expired-token observations: %d",
		inside, upgradeEnd.Sub(upgradeStart).Round(time.Second), len(soonWatcher.tokens), len(watcher.expired)+len(soonWatcher.expired)))

	// Uninstall keeps the CRD, the grant and every Secret.
	helm(t, "uninstall", "grantkeeper", "-n", namespace, "--wait", "--timeout=2m")
	poll(t, "the manager Pods to go", 90*time.Second, func() bool { return managerPodsGone(t) })
	for _, obj := range []string{"crd/googleoauthgrants.oauth.grantkeeper.dev"} {
		kubectl(t, "get", obj)
	}
	for _, obj := range []string{"gog/reports", "secret/client", "secret/rt", "secret/reports-access-token"} {
		if _, err := kubectlErr("-n", "helm-apps", "get", obj); err != nil {
			t.Errorf("helm uninstall removed %s: %v", obj, err)
		}
	}
	if out, err := kubectlErr("-n", namespace, "get", "deployment", deployment); err == nil {
		t.Errorf("the Deployment survived helm uninstall: %s", out)
	}
}
