package incluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/grantkeeper/grantkeeper/internal/inject"
)

const (
	sidecarImage = "grantkeeper.local/metadata-server:local" // as config/local-node names it
	adcImage     = "grantkeeper.local/adc:test"              // examples/adc, unmodified
	injectNS     = "inject-apps"
)

// apiCalls records the calls to fake Google's protected API (/v1/whoami) that name a client
// in their query, with the token and the answer: what the Pod's library really sent.
var apiCalls = &callLog{calls: map[string][]apiCall{}}

type apiCall struct {
	at     time.Time
	token  string
	status int
}

type callLog struct {
	mu    sync.Mutex
	calls map[string][]apiCall
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }

func (l *callLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := r.URL.Query().Get("client")
		if r.URL.Path != "/v1/whoami" || client == "" {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls[client] = append(l.calls[client], apiCall{time.Now(), tok, sw.status})
	})
}

// summary of the client's calls before a moment: how many, how many not answered 200, and
// how many distinct tokens they carried.
func (l *callLog) summary(client string, before time.Time) (calls, failed, tokens int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	for _, c := range l.calls[client] {
		if !c.at.Before(before) {
			continue
		}
		calls++
		if c.status != http.StatusOK {
			failed++
		}
		seen[c.token] = true
	}
	return calls, failed, len(seen)
}

// kubectlAll runs kubectl and returns stdout and stderr together (admission warnings are on
// stderr).
func kubectlAll(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := cluster.Kubectl(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func getPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal([]byte(kubectl(t, "-n", ns, "get", "pod", name, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// plainPod is a Pod without the annotation, created with --dry-run=server: what the API
// server would store. No ServiceAccount token volume, so two answers compare exactly.
func plainPod(t *testing.T, ns string) corev1.PodSpec {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: %s, labels: {app: plain}}
spec:
  automountServiceAccountToken: false
  nodeName: localhost
  containers:
  - {name: app, image: %s, imagePullPolicy: Never, env: [{name: KEEP, value: "1"}]}
`, ns, pauseImage)
	var p corev1.Pod
	if err := json.Unmarshal([]byte(kubectlAll(t, manifest, "create", "--dry-run=server", "-o", "json", "-f", "-")), &p); err != nil {
		t.Fatal(err)
	}
	return p.Spec
}

func injected(p *corev1.Pod) bool {
	for _, c := range p.Spec.InitContainers {
		if c.Name == inject.SidecarName {
			return true
		}
	}
	return false
}

var timestamped = regexp.MustCompile(`^(\S+) (status=\d+|error=.*)$`)

// appLog reads the Go program's log lines (timestamp, then status=NNN or error="...").
func appLog(t *testing.T, ns, pod string) (lines []string) {
	t.Helper()
	for _, l := range strings.Split(kubectl(t, "-n", ns, "logs", pod, "-c", "app"), "\n") {
		if timestamped.MatchString(l) {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestInjectedSidecarInPod: the manager in-cluster with the webhook on (config/default), a
// grant with 18-second tokens, and a Pod that carries only the annotation and runs the
// unmodified examples/adc (google.FindDefaultCredentials): the webhook adds the sidecar, the
// Pod passes the restricted Pod Security level, and the program calls fake Google's API
// across five refreshes with zero 401s; after the user revokes the grant, the sidecar stops
// serving once the last token expires. Then: a Pod naming a missing grant is admitted with a
// warning; a Pod without the annotation is stored exactly as without the webhook; a rotated
// certificate keeps the webhook working; and with the webhook down, Pods are still created.
func TestInjectedSidecarInPod(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	start := time.Now()
	if len(managerPods(t)) == 0 {
		deploy(t) // the Helm test before this one uninstalled its release
	}
	poll(t, "two Ready manager Pods (webhook certificate loaded)", 180*time.Second, func() bool {
		pods := managerPods(t)
		return len(pods) == 2 && pods[0].Ready && pods[1].Ready
	})
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := json.Unmarshal([]byte(kubectl(t, "get", "mutatingwebhookconfiguration", inject.ConfigurationName, "-o", "json")), &mwc); err != nil {
		t.Fatal(err)
	}
	if len(mwc.Webhooks) != 1 || len(mwc.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Fatalf("the manager did not patch its CA into %s: %+v", inject.ConfigurationName, mwc.Webhooks)
	}
	caBefore := string(mwc.Webhooks[0].ClientConfig.CABundle)

	// The application namespace enforces the restricted level: the injected sidecar must pass it.
	// 18 s tokens replaced 12 s before expiry (a refresh every 6 s): the program's x/oauth2
	// fetches a new token from the sidecar 10 s before its expiry, so the margin is
	// refreshBefore's, whatever the lifetime; a shorter one makes the five refreshes sooner.
	google.SetLifetime(18 * time.Second)
	rt := google.NewRefreshToken(clientID, scope)
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s, labels: {pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: v1
kind: Secret
metadata: {name: client, namespace: %[1]s}
stringData: {client_id: %[2]q, client_secret: %[3]q}
---
apiVersion: v1
kind: Secret
metadata: {name: rt, namespace: %[1]s}
stringData: {refresh_token: %[4]q}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: private-ca, namespace: %[1]s}
data: {ca.crt: %[5]q}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: reports, namespace: %[1]s}
spec:
  clientSecretRef: {name: client}
  refreshTokenSecretRef: {name: rt}
  refreshBefore: 12s
`, injectNS, clientID, clientSecret, rt, googleCA))
	kubectl(t, "wait", "-n", injectNS, "--for=condition=Ready", "--timeout=90s", "gog/reports")
	requestsBefore := google.Requests(rt)

	// Only the annotation; the rest is this test node's (fake Google's private CA and URL).
	podStart := time.Now()
	out := kubectlAll(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: adc
  namespace: %s
  annotations: {%s: reports}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: %s
    imagePullPolicy: Never
    env:
    - {name: API_URL, value: "%s/v1/whoami?client=adc"}
    - {name: INTERVAL, value: 2s}
    - {name: SSL_CERT_DIR, value: /etc/grantkeeper/ca}
    volumeMounts: [{name: private-ca, mountPath: /etc/grantkeeper/ca, readOnly: true}]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
  volumes: [{name: private-ca, configMap: {name: private-ca}}]
`, injectNS, inject.Annotation, adcImage, googleURL), "create", "-f", "-")
	if strings.Contains(out, "Warning") {
		t.Errorf("the webhook warned about a Pod whose grant exists: %s", out)
	}
	pod := getPod(t, injectNS, "adc")
	if !injected(pod) {
		t.Fatalf("the webhook did not inject the sidecar: init containers %+v", pod.Spec.InitContainers)
	}
	if sc := pod.Spec.InitContainers[0]; sc.Image != sidecarImage || sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("sidecar %s with restartPolicy %v; want %s as a native sidecar", sc.Image, sc.RestartPolicy, sidecarImage)
	}
	kubectl(t, "wait", "-n", injectNS, "--for=condition=Ready", "--timeout=120s", "pod/adc")
	figures = append(figures, fmt.Sprintf("injected Pod created to Ready: %s", time.Since(podStart).Round(100*time.Millisecond)))

	// Five refreshes, each token used by the program: six distinct tokens at the API.
	poll(t, "five refreshes, each used by the Pod", 180*time.Second, func() bool {
		_, _, tokens := apiCalls.summary("adc", time.Now())
		return google.Requests(rt) >= requestsBefore+5 && tokens >= 6
	})
	revokedAt := time.Now()
	calls, failed, tokens := apiCalls.summary("adc", revokedAt)
	if failed > 0 {
		t.Errorf("%d of %d API calls from the Pod were not answered 200", failed, calls)
	}
	lines := appLog(t, injectNS, "adc")
	seen200 := false
	for _, l := range lines {
		switch {
		case strings.Contains(l, "status=200"):
			seen200 = true
		case strings.Contains(l, "status=401"):
			t.Errorf("the program got a 401: %s", l)
		case seen200: // errors before the first success: the sidecar was still starting
			t.Errorf("the program failed after it had worked: %s", l)
		}
	}
	if !seen200 {
		t.Fatalf("the program never called the API successfully; its log:\n%s", kubectl(t, "-n", injectNS, "logs", "adc", "--all-containers"))
	}
	figures = append(figures, fmt.Sprintf("in-Pod Go ADC program: %d API calls, %d tokens, %d not 200, over %d refreshes",
		calls, tokens, failed, google.Requests(rt)-requestsBefore))

	// The user revokes the grant at Google: no new token is published; the sidecar serves the
	// last one until it expires, then 503 (the library gives up with an error) and not-ready.
	issued := google.AccessTokensFor(rt)
	lastExpiry := issued[len(issued)-1].Expiry
	google.RevokeRefreshToken(rt)
	poll(t, "the sidecar to refuse the expired token", time.Until(lastExpiry)+90*time.Second, func() bool {
		for _, l := range appLog(t, injectNS, "adc") {
			if strings.Contains(l, "error=") && strings.Contains(l, "503") {
				return true
			}
		}
		return false
	})
	// The sidecar treats a token with under a second left as expired (internal/metadataserver:
	// expires_in 0 is refused by clients), and the derived Secret's expiry is in whole seconds:
	// a refusal up to 2 s before the fake's expiry is the token ending, not an early refusal.
	if now := time.Now(); now.Before(lastExpiry.Add(-2 * time.Second)) {
		t.Errorf("the sidecar refused at %s, before the last token's expiry %s (less 2 s: the last second, and the Secret's whole-second expiry)", now, lastExpiry)
	}
	poll(t, "the Pod to turn not-ready", 60*time.Second, func() bool { return !podReady(getPod(t, injectNS, "adc")) })

	// A grant that does not exist: admitted with a warning, the sidecar injected (not ready).
	out = kubectlAll(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: early, namespace: %s, annotations: {%s: not-yet}}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - {name: app, image: %s, imagePullPolicy: Never, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}
`, injectNS, inject.Annotation, pauseImage), "create", "-f", "-")
	if !strings.Contains(out, "Warning") || !strings.Contains(out, `GoogleOAuthGrant "not-yet" not found`) {
		t.Errorf("a Pod naming a missing grant: want an admission warning, kubectl said: %s", out)
	}
	if !injected(getPod(t, injectNS, "early")) {
		t.Errorf("a Pod naming a missing grant got no sidecar")
	}

	// A Pod without the annotation, with the webhook up (compared below with it down), in a
	// namespace without Pod Security enforcement.
	kubectl(t, "create", "namespace", "bystanders")
	plainUp := plainPod(t, "bystanders")
	if len(plainUp.InitContainers) > 0 || len(plainUp.Volumes) > 0 || len(plainUp.Containers[0].Env) != 1 {
		t.Errorf("a Pod without the annotation was changed: %+v", plainUp)
	}

	// Rotation: the certificate Secret emptied (as if expired): the manager makes a new CA
	// and certificate, patches the caBundle, and the webhook works again with them.
	rotated := time.Now()
	kubectl(t, "-n", namespace, "patch", "secret", inject.CertSecretName, "--type=json", `-p=[{"op":"remove","path":"/data"}]`)
	poll(t, "a new CA in the webhook configuration", 60*time.Second, func() bool {
		ca := kubectl(t, "get", "mutatingwebhookconfiguration", inject.ConfigurationName, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}")
		return ca != "" && ca != caBefore
	})
	probe := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: probe, namespace: %s, annotations: {%s: reports}}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - {name: app, image: %s, imagePullPolicy: Never, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}
`, injectNS, inject.Annotation, pauseImage)
	// Until the kubelet has updated the mounted Secret, the API server (new CA) rejects the
	// old certificate and, failurePolicy Ignore, admits the Pod unchanged.
	poll(t, "the webhook to serve the rotated certificate", 120*time.Second, func() bool {
		var p corev1.Pod
		return json.Unmarshal([]byte(kubectlAll(t, probe, "create", "--dry-run=server", "-o", "json", "-f", "-")), &p) == nil && injected(&p)
	})
	figures = append(figures, fmt.Sprintf("webhook certificate rotation to injecting again: %s", time.Since(rotated).Round(100*time.Millisecond)))

	// The webhook down (the manager scaled to zero): Pods in any namespace are created,
	// and an annotated one is admitted without the sidecar (failurePolicy Ignore).
	kubectl(t, "-n", namespace, "scale", "deployment/"+deployment, "--replicas=0")
	poll(t, "the manager Pods to go", 90*time.Second, func() bool { return managerPodsGone(t) })
	plainDown := plainPod(t, "bystanders")
	a, _ := json.Marshal(plainUp)
	b, _ := json.Marshal(plainDown)
	if string(a) != string(b) {
		t.Errorf("a Pod without the annotation is stored differently with the webhook up:\n up:   %s\n down: %s", a, b)
	}
	kubectlAll(t, strings.ReplaceAll(probe, injectNS, "bystanders"), "create", "-f", "-")
	if injected(getPod(t, "bystanders", "probe")) {
		t.Errorf("a sidecar was injected while the webhook was down?")
	}
	kubectl(t, "-n", namespace, "scale", "deployment/"+deployment, "--replicas=2")
	figures = append(figures, fmt.Sprintf("TestInjectedSidecarInPod: %s", time.Since(start).Round(time.Second)))
}

// webhookInjects: a Pod annotated with grant in ns, created with --dry-run=server, gets the
// sidecar image the manager was given (polled: the first calls may precede the caBundle).
func webhookInjects(t *testing.T, ns, grant string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: dry, namespace: %s, annotations: {%s: %s}}
spec:
  automountServiceAccountToken: false
  containers: [{name: app, image: %s, imagePullPolicy: Never}]
`, ns, inject.Annotation, grant, pauseImage)
	var p corev1.Pod
	poll(t, "the webhook to inject the sidecar", 60*time.Second, func() bool {
		p = corev1.Pod{}
		return json.Unmarshal([]byte(kubectlAll(t, manifest, "create", "--dry-run=server", "-o", "json", "-f", "-")), &p) == nil && injected(&p)
	})
	if img := p.Spec.InitContainers[0].Image; img != sidecarImage {
		t.Errorf("the webhook injects image %s, want %s", img, sidecarImage)
	}
}
