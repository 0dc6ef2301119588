package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/grantkeeper/grantkeeper/test/framework/devstack"
)

// TestGracefulShutdownLogsNoErrors: the manager gets SIGTERM, as in every rolling update and
// leader hand-over, while token requests are in flight (the fake Google answers slowly). It
// must stop without a single error-level log line (operators alert on those), finish the
// refreshes it had started rather than waste them, and hand over to the next manager.
func TestGracefulShutdownLogsNoErrors(t *testing.T) {
	ns := namespace(t, "shutdown")
	g := stack.Google
	const grants = 8 // as many as --max-concurrent-reconciles: all in flight at once

	// A manager with every server it can run (metrics, probes, pprof), so that their shutdown
	// is covered too; the suite's manager gave up the Lease on SIGTERM, so this one leads at once.
	stack.StopManager()
	logStart := fileSize(t, stack.ManagerLog)
	if err := stack.StartManager("--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0", "--pprof-bind-address=127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}

	g.SetLatency(3 * time.Second)
	defer g.SetLatency(0)
	before := g.TotalRequests()
	var manifest strings.Builder
	for i := range grants {
		fmt.Fprintf(&manifest, `apiVersion: v1
kind: Secret
metadata: {name: rt-%[1]d}
stringData: {refresh_token: %[2]q}
---
apiVersion: oauth.grantkeeper.dev/v1alpha1
kind: GoogleOAuthGrant
metadata: {name: g%[1]d}
spec: {clientSecretRef: {name: client}, refreshTokenSecretRef: {name: rt-%[1]d}}
---
`, i, g.NewRefreshToken(devstack.SampleClientID, devstack.SampleScope))
	}
	fmt.Fprintf(&manifest, "apiVersion: v1\nkind: Secret\nmetadata: {name: client}\nstringData: {client_id: %q, client_secret: %q}\n",
		devstack.SampleClientID, devstack.SampleClientSecret)
	if out, err := kubectlStdin(t, manifest.String(), "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return g.TotalRequests()-before >= grants, nil
	}); err != nil {
		t.Fatalf("only %d of %d token requests reached the fake within a minute", g.TotalRequests()-before, grants)
	}
	stopped := time.Now()
	stack.StopManager() // SIGTERM, and waits for the process to exit
	t.Logf("the manager exited %.1fs after SIGTERM, with %d token requests in flight", time.Since(stopped).Seconds(), grants)

	log := readFrom(t, stack.ManagerLog, logStart)
	if bad := errorLines(log); len(bad) > 0 {
		t.Errorf("a graceful shutdown logged %d error-level lines:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	// The refreshes in flight were finished, not abandoned: their tokens were published.
	for i := range grants {
		if out, err := stack.Run("get", "gog", "-n", ns, fmt.Sprintf("g%d", i), "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); err != nil || out != "True" {
			t.Errorf("g%d: Ready=%q after the shutdown (%v): the refresh in flight was dropped", i, out, err)
		}
	}

	g.SetLatency(0)
	if err := stack.StartManager(); err != nil {
		t.Fatal(err)
	}
	for i := range grants {
		kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", fmt.Sprintf("gog/g%d", i))
	}
	kubectl(t, "delete", "namespace", ns, "--wait=false")
}

var (
	// klog's error and fatal lines (client-go logs through klog): E1130 21:40:00.123456 ...
	klogError = regexp.MustCompile(`^[EF]\d{4} \d\d:\d\d:\d\d`)
	// zap's levels from error up.
	errorLevels = map[string]bool{"error": true, "dpanic": true, "panic": true, "fatal": true}
)

// errorLines returns the lines of a manager log at error level or above: zap's JSON lines,
// zap's development format, klog's, and what main prints when it exits with an error.
func errorLines(log string) []string {
	var bad []string
	for _, line := range strings.Split(log, "\n") {
		var entry struct {
			Level string `json:"level"`
		}
		switch {
		case strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &entry) == nil:
			if errorLevels[strings.ToLower(entry.Level)] {
				bad = append(bad, line)
			}
		case klogError.MatchString(line), strings.HasPrefix(line, "error:"), strings.HasPrefix(line, "panic:"),
			strings.Contains(line, "\tERROR\t"), strings.Contains(line, "\tDPANIC\t"):
			bad = append(bad, line)
		}
	}
	return bad
}

func TestErrorLines(t *testing.T) {
	for _, tc := range []struct {
		line string
		bad  bool
	}{
		{`{"level":"info","ts":"2026-11-30T21:40:00Z","msg":"Stopping and waiting for caches"}`, false},
		{`{"level":"error","ts":"2026-11-30T21:40:00Z","msg":"Reconciler error","error":"context canceled"}`, true},
		{`{"level":"dpanic","msg":"odd"}`, true},
		{`I1130 21:40:00.123456       1 leaderelection.go:271] successfully acquired lease`, false},
		{`E1130 21:40:00.123456       1 leaderelection.go:322] Failed to release lock: context canceled`, true},
		{`error: creating manager: boom`, true},
		{"2026-11-30T21:40:00Z\tERROR\tReconciler error", true},
		{"2026-11-30T21:40:00Z\tINFO\tall good", false},
		{``, false},
	} {
		if got := len(errorLines(tc.line)) > 0; got != tc.bad {
			t.Errorf("errorLines(%q) found an error: %v, want %v", tc.line, got, tc.bad)
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func readFrom(t *testing.T, path string, offset int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[offset:])
}
