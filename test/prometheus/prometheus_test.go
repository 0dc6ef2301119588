// Package prometheus proves the shipped alert rules on a real Prometheus (Debian's package,
// run as a process on this host): it scrapes the manager's secure metrics endpoint over HTTPS
// with a metrics-reader ServiceAccount token, verifying the manager's certificate against a
// test CA, with config/prometheus/rules.yaml loaded unchanged. A refresh token revoked at the
// fake Google server must make GoogleOAuthGrantRevoked pending and then firing, as Prometheus's
// HTTP API reports it, and storing a new refresh token must resolve it.
//
// With GRANTKEEPER_DASHBOARD_PNG set (make dashboard-png) the suite also plots the Grafana
// dashboard's panels from this Prometheus into that file, with hack/dashboard-plot.
package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/gobuild"
	"github.com/grantkeeper/grantkeeper/test/framework/testcert"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/grantkeeper/grantkeeper/test/framework/dashboard"
	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
	"github.com/grantkeeper/grantkeeper/test/framework/fakegoogle"
	"github.com/grantkeeper/grantkeeper/test/framework/fixtures"
	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
	"github.com/grantkeeper/grantkeeper/test/framework/listencheck"
	"github.com/grantkeeper/grantkeeper/test/framework/promtool"
)

var (
	root    string
	work    string
	stack   *devstack.Stack
	promBin string
)

// tokenLifetime of the fake's access tokens: short, so a revocation is found by a scheduled
// refresh within seconds (grants refresh a third of the lifetime before expiry).
const tokenLifetime = 12 * time.Second

// revokedFor replaces GoogleOAuthGrantRevoked's shipped `for: 1m` in the rules this
// Prometheus loads: what this test proves on a real Prometheus is that the real scrape feeds
// the rule, that a for: holds it back (pending before firing) and that a new refresh token
// resolves it; waiting the full minute proved nothing more and was most of the suite's wall
// time. The 1m itself is asserted by test/rules (testdata/grants.yaml, "issue 19: ...
// fires after its 1m for:, not before"), and rulesWithFor checks the shipped value is 1m.
const revokedFor = 15 * time.Second

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "prometheus:", err); return 1 }
	var err error
	if root, err = k8sbin.RepoRoot(); err != nil {
		return fail(err)
	}
	var reason string
	if promBin, reason = promtool.Find(root, "prometheus", os.Stdout); reason != "" {
		if os.Getenv("CI") != "" {
			return fail(fmt.Errorf("cannot run the Prometheus end-to-end test in CI: %s", reason))
		}
		fmt.Printf("prometheus: SKIPPING the end-to-end Prometheus test (no prometheus binary, and it could not be fetched): %s\n", reason)
		return 0
	}
	binDir, err := k8sbin.Dir(root)
	if err != nil {
		return fail(err)
	}
	if work, err = os.MkdirTemp("", "gkprom-"); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	manager := filepath.Join(work, "manager")
	if err := gobuild.Build(root, "./cmd/manager", manager); err != nil {
		return fail(err)
	}
	if stack, err = devstack.Up(devstack.Options{Root: root, Dir: filepath.Join(work, "stack"), BinDir: binDir,
		ManagerBin: manager, TokenLifetime: tokenLifetime}); err != nil {
		return fail(err)
	}
	defer stack.Down()
	code := m.Run()
	if code != 0 {
		for _, f := range []string{stack.ManagerLog, filepath.Join(work, "prometheus", "prometheus.log")} {
			b, _ := os.ReadFile(f)
			fmt.Fprintf(os.Stderr, "--- %s (last 8000 bytes) ---\n%s\n", filepath.Base(f), tail(b, 8000))
		}
	}
	return code
}

// rulesWithFor returns rule groups with alert's for: set to d, after checking that it is
// want in the shipped rules.
func rulesWithFor(groups []byte, alert, want string, d time.Duration) ([]byte, error) {
	var raw struct {
		Groups []struct {
			Name  string           `json:"name"`
			Rules []map[string]any `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(groups, &raw); err != nil {
		return nil, err
	}
	found := 0
	for _, g := range raw.Groups {
		for _, r := range g.Rules {
			if r["alert"] != alert {
				continue
			}
			if r["for"] != want {
				return nil, fmt.Errorf("the shipped %s has for: %v, want %s (change this test and test/rules together)", alert, r["for"], want)
			}
			r["for"] = d.String()
			found++
		}
	}
	if found != 1 {
		return nil, fmt.Errorf("%d rules for alert %s in the shipped rules, want 1", found, alert)
	}
	return yaml.Marshal(raw)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestRevokedAlertOnARealPrometheus is issue 19's item 2.
func TestRevokedAlertOnARealPrometheus(t *testing.T) {
	started := time.Now()
	dir := filepath.Join(work, "prometheus")
	certDir := filepath.Join(work, "metrics-cert")
	for _, d := range []string{dir, certDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The manager serves a certificate for 127.0.0.1 signed by a test CA (as cert-manager
	// would issue one for the Service); Prometheus trusts that CA and nothing else. A second
	// job trusting another CA must fail to scrape: verification is really on.
	caPEM := writeServingCert(t, certDir)
	otherCA := writeServingCert(t, t.TempDir())
	mustWrite(t, filepath.Join(dir, "ca.crt"), caPEM)
	mustWrite(t, filepath.Join(dir, "other-ca.crt"), otherCA)

	stack.StopManager()
	target, err := stack.StartManagerListening("metrics-bind-address", "--metrics-cert-dir="+certDir)
	if err != nil {
		t.Fatal(err)
	}
	google := stack.Google
	// Time-based access: refresh tokens that end in 20 hours, so the new
	// GoogleOAuthRefreshTokenExpiringSoon alert has something to see.
	google.SetRefreshTokenExpiresIn(20 * time.Hour)
	tokens := map[string]string{}
	for _, g := range []string{"reports", "crm", "sheets"} {
		tokens[g] = google.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope)
	}
	objs := fixtures.Scraper("monitoring", "prometheus-grantkeeper-metrics", "prometheus") + "---\n" +
		fixtures.Grants("apps", devstack.SampleClient, tokens)
	if out, err := stack.RunInput(objs, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
	// Prometheus authenticates as monitoring/prometheus with a TokenRequest token.
	token := strings.TrimSpace(stack.MustRun(t, "create", "token", "prometheus", "-n", "monitoring", "--duration=1h"))
	tokenFile := filepath.Join(dir, "token")
	mustWrite(t, tokenFile, []byte(token))
	rules, err := promtool.RuleGroups(root)
	if err != nil {
		t.Fatal(err)
	}
	if rules, err = rulesWithFor(rules, "GoogleOAuthGrantRevoked", "1m", revokedFor); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "rules.yaml"), rules)
	// Short intervals so the test waits on the rules' own for: durations, not on scrapes.
	mustWrite(t, filepath.Join(dir, "prometheus.yml"), []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [rules.yaml]
scrape_configs:
- job_name: grantkeeper
  scheme: https
  authorization: {credentials_file: %[1]s}
  tls_config: {ca_file: %[2]s}
  static_configs: [{targets: [%[3]q]}]
- job_name: grantkeeper-other-ca
  scheme: https
  authorization: {credentials_file: %[1]s}
  tls_config: {ca_file: %[4]s}
  static_configs: [{targets: [%[3]q]}]
`, tokenFile, filepath.Join(dir, "ca.crt"), target, filepath.Join(dir, "other-ca.crt"))))
	prom := startPrometheus(t, dir)

	stack.MustRun(t, "wait", "-n", "apps", "--for=condition=Ready", "--timeout=60s", "gog/reports", "gog/crm", "gog/sheets")

	// The scrape works only with the right CA.
	poll(t, 60*time.Second, "Prometheus scraping the manager over verified HTTPS", func() (bool, string) {
		ts, err := prom.targets()
		if err != nil {
			return false, err.Error()
		}
		ok, other := false, ""
		for _, tg := range ts {
			switch tg.Labels["job"] {
			case "grantkeeper":
				ok = tg.Health == "up"
			case "grantkeeper-other-ca":
				if tg.Health == "down" {
					other = tg.LastError
				}
			}
		}
		return ok && other != "", fmt.Sprintf("targets: %+v", ts)
	})
	ts, _ := prom.targets()
	for _, tg := range ts {
		if tg.Labels["job"] == "grantkeeper-other-ca" && !strings.Contains(tg.LastError, "certificate") {
			t.Errorf("the scrape trusting another CA failed, but not on the certificate: %q", tg.LastError)
		}
	}
	// The series the dashboard and the joins need arrive through the real scrape.
	poll(t, 30*time.Second, "grantkeeper_grant_info and the refresh token's expiry in Prometheus", func() (bool, string) {
		info, err := prom.query(`grantkeeper_grant_info{job="grantkeeper", namespace="apps", name="reports"}`)
		if err != nil {
			return false, err.Error()
		}
		exp, err := prom.query(`grantkeeper_refresh_token_expiration_timestamp_seconds{job="grantkeeper", name="reports"} - time()`)
		if err != nil {
			return false, err.Error()
		}
		return len(info) == 1 && info[0].Metric["client_id"] == devstack.SampleClientID && len(exp) == 1,
			fmt.Sprintf("info %+v, expiry %+v", info, exp)
	})
	poll(t, 30*time.Second, "GoogleOAuthRefreshTokenExpiringSoon pending (refresh tokens end in 20h)", func() (bool, string) {
		as, err := prom.alerts()
		return err == nil && find(as, "GoogleOAuthRefreshTokenExpiringSoon", "reports") != nil, fmt.Sprintf("%v %+v", err, as)
	})
	// Some transient failures, so the failure panels have something to show.
	google.FailNext(3, fakegoogle.Failure{Status: http.StatusServiceUnavailable})

	// Revoke the grant's refresh token as its user would, at Google.
	revokedAt := time.Now()
	google.RevokeRefreshToken(tokens["reports"])
	var pendingAt, firingAt time.Time
	poll(t, 3*time.Minute, "GoogleOAuthGrantRevoked firing for apps/reports", func() (bool, string) {
		as, err := prom.alerts()
		if err != nil {
			return false, err.Error()
		}
		a := find(as, "GoogleOAuthGrantRevoked", "reports")
		switch {
		case a == nil:
		case a.State == "pending" && pendingAt.IsZero():
			pendingAt = time.Now()
		case a.State == "firing":
			firingAt = time.Now()
			if !strings.Contains(a.Annotations["description"], "kubectl grantkeeper authorize reports -n apps") {
				t.Errorf("the firing alert's description does not say how to re-consent this grant: %q", a.Annotations["description"])
			}
			return true, ""
		}
		return false, fmt.Sprintf("alerts: %+v", as)
	})
	if pendingAt.IsZero() {
		t.Fatal("GoogleOAuthGrantRevoked was never seen pending before firing: its for: did not hold it back")
	}
	if d := firingAt.Sub(pendingAt); d < revokedFor-5*time.Second {
		t.Errorf("GoogleOAuthGrantRevoked fired %v after going pending; the rule's for: is %v here", d, revokedFor)
	}
	// An unanswered alerts request must not read as "no alert for crm or sheets".
	as, err := prom.alerts()
	if err != nil {
		t.Fatalf("Prometheus's alerts API: %v", err)
	}
	if find(as, "GoogleOAuthGrantRevoked", "reports") == nil {
		t.Fatalf("the alerts listed after reports' alert fired do not include it: %+v", as)
	}
	for _, g := range []string{"crm", "sheets"} {
		if find(as, "GoogleOAuthGrantRevoked", g) != nil {
			t.Errorf("GoogleOAuthGrantRevoked is active for %s, whose refresh token was not revoked", g)
		}
	}
	t.Logf("FIGURE revocation to firing: %v (to pending %v; the rule's for: is %v here (1m shipped), scrapes and evaluations every 1s, access tokens live %v)",
		firingAt.Sub(revokedAt).Round(time.Second), pendingAt.Sub(revokedAt).Round(time.Second), revokedFor, tokenLifetime)

	// A new consent: a new refresh token stored in the grant's Secret.
	fresh := google.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope)
	storedAt := time.Now()
	stack.MustRun(t, "-n", "apps", "patch", "secret", "reports-rt", "--type=merge", "-p", fmt.Sprintf(`{"stringData":{"refresh_token":%q}}`, fresh))
	poll(t, 90*time.Second, "GoogleOAuthGrantRevoked resolved for apps/reports", func() (bool, string) {
		as, err := prom.alerts()
		return err == nil && find(as, "GoogleOAuthGrantRevoked", "reports") == nil, fmt.Sprintf("%v %+v", err, as)
	})
	t.Logf("FIGURE new refresh token to resolved: %v", time.Since(storedAt).Round(time.Second))
	if r, err := prom.query(`grantkeeper_grant_ready{job="grantkeeper", name="reports"}`); err != nil || len(r) != 1 || r[0].Value[1] != "1" {
		t.Errorf("after the new refresh token, grantkeeper_grant_ready for reports is %+v (%v), want 1", r, err)
	}

	// Every series the Grafana dashboard reads is one this manager really serves (the
	// offline check in config/grafana compares with the registered names).
	d, err := dashboard.Load(filepath.Join(root, "config", "grafana", "grantkeeper.json"))
	if err != nil {
		t.Fatal(err)
	}
	served, err := prom.query(`group by (__name__) ({job="grantkeeper"})`)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range served {
		names[s.Metric["__name__"]] = true
	}
	for _, n := range d.Referenced() {
		if !names[n] {
			t.Errorf("the dashboard reads %s, which Prometheus did not scrape from the manager", n)
		}
	}

	if out := os.Getenv("GRANTKEEPER_DASHBOARD_PNG"); out != "" {
		plot := exec.Command("go", "run", "./hack/dashboard-plot", "-prometheus", prom.url,
			"-dashboard", filepath.Join("config", "grafana", "grantkeeper.json"),
			"-start", started.Format(time.RFC3339), "-end", time.Now().Format(time.RFC3339), "-out", out)
		plot.Dir = root
		if b, err := plot.CombinedOutput(); err != nil {
			t.Fatalf("hack/dashboard-plot: %v\n%s", err, b)
		}
		t.Logf("dashboard plotted to %s", out)
	}
}

// writeServingCert: testcert.WriteServing, failing the test on error.
func writeServingCert(t *testing.T, dir string) []byte {
	t.Helper()
	ca, err := testcert.WriteServing(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, state := cond()
		last = state
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %v; last: %.3000s", what, timeout, last)
	}
}

// promServer is a Prometheus process and its HTTP API.
type promServer struct {
	url string
}

func startPrometheus(t *testing.T, dir string) *promServer {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	// A port picked free may be taken before Prometheus binds it: Prometheus then exits,
	// and starts again on another.
	for attempt := 1; ; attempt++ {
		port, err := listencheck.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path="+filepath.Join(dir, "data"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		exited := false
		poll(t, 60*time.Second, "Prometheus listening", func() (bool, string) {
			select {
			case <-done:
				exited = true
				return true, ""
			default:
			}
			return listencheck.ListensOn(cmd.Process.Pid, port), fmt.Sprintf("port %d", port)
		})
		if exited {
			if attempt == 5 {
				t.Fatalf("Prometheus exited before listening (5 attempts; see %s)", log.Name())
			}
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		p := &promServer{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
		poll(t, 60*time.Second, "Prometheus ready", func() (bool, string) {
			resp, err := http.Get(p.url + "/-/ready")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status
		})
		return p
	}
}

func (p *promServer) get(path string, params url.Values, into any) error {
	resp, err := http.Get(p.url + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %v: %.300s", path, err, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, into)
}

type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

func (p *promServer) alerts() ([]alert, error) {
	var d struct {
		Alerts []alert `json:"alerts"`
	}
	err := p.get("/api/v1/alerts", nil, &d)
	return d.Alerts, err
}

func find(as []alert, name, grant string) *alert {
	for i := range as {
		if as[i].Labels["alertname"] == name && as[i].Labels["name"] == grant {
			return &as[i]
		}
	}
	return nil
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (p *promServer) query(q string) ([]sample, error) {
	var d struct {
		Result []sample `json:"result"`
	}
	err := p.get("/api/v1/query", url.Values{"query": {q}}, &d)
	return d.Result, err
}

type target struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

func (p *promServer) targets() ([]target, error) {
	var d struct {
		Active []target `json:"activeTargets"`
	}
	err := p.get("/api/v1/targets", nil, &d)
	return d.Active, err
}
