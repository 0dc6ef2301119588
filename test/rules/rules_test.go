// Package rules evaluates the shipped PrometheusRule (config/prometheus/rules.yaml) with
// promtool: `promtool check rules`, and `promtool test rules` on the cases in testdata/,
// which feed the rules the series grantkeeper exports and say which alerts must fire when.
package rules

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"
	"github.com/grantkeeper/grantkeeper/test/framework/promtool"
)

var (
	root     string // repository root
	promPath string // promtool
)

func TestMain(m *testing.M) {
	var err error
	if root, err = k8sbin.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var reason string
	if promPath, reason = promtool.Find(root, "promtool", os.Stdout); reason != "" {
		if os.Getenv("CI") != "" {
			// CI runs as root with apt: there the rule tests must run, so not being able to is a failure.
			fmt.Fprintf(os.Stderr, "rules: cannot run the alert rule tests in CI: %s\n", reason)
			os.Exit(1)
		}
		fmt.Printf("rules: SKIPPING the alert rule tests (no promtool, and it could not be fetched): %s\n", reason)
	}
	os.Exit(m.Run())
}

// ruleFile is the part of a PrometheusRule (or a promtool rule file) the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Record      string            `json:"record"`
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// shippedRules reads config/prometheus/rules.yaml and returns its groups as a promtool rule
// file (promtool wants plain groups; a PrometheusRule has them under spec).
func shippedRules(t *testing.T) ([]byte, ruleFile) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "config", "prometheus", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		t.Fatalf("config/prometheus/rules.yaml: %v", err)
	}
	if pr.Kind != "PrometheusRule" || len(pr.Spec.Groups) == 0 {
		t.Fatalf("config/prometheus/rules.yaml: want a PrometheusRule with spec.groups, got kind %q and %d groups", pr.Kind, len(pr.Spec.Groups))
	}
	plain, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(plain, &rf); err != nil {
		t.Fatal(err)
	}
	return plain, rf
}

func needPromtool(t *testing.T) {
	if promPath == "" {
		t.Skip("no promtool (see TestMain's message)")
	}
}

func TestCheckRules(t *testing.T) {
	needPromtool(t)
	plain, _ := shippedRules(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), plain, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promPath, "check", "rules", filepath.Join(dir, "rules.yaml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestRuleUnitTests runs every testdata/*.yaml against the shipped rules (each names
// rule_files: [rules.yaml] and is copied next to the extracted groups).
func TestRuleUnitTests(t *testing.T) {
	needPromtool(t)
	plain, _ := shippedRules(t)
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule unit tests in testdata/ (%v)", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), plain, 0o644); err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			test := filepath.Join(dir, filepath.Base(f))
			if err := os.WriteFile(test, body, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(promPath, "test", "rules", filepath.Base(test))
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool test rules %s: %v\n%s", f, err, out)
			}
			if !strings.Contains(string(out), "SUCCESS") {
				t.Fatalf("promtool test rules %s did not report SUCCESS:\n%s", f, out)
			}
		})
	}
}

// unitTests is the part of a promtool test file the coverage check reads.
type unitTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name      string `json:"name"`
		AlertRule []struct {
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertIsTestedAndDocumented: each shipped alert has a case where it fires and one
// where it must not, a severity, a summary and a description, and a row in docs/operations.md; so a
// new alert cannot ship untested or unexplained.
func TestEveryAlertIsTestedAndDocumented(t *testing.T) {
	_, rf := shippedRules(t)
	fires, silent := map[string]bool{}, map[string]bool{}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ut unitTests
		if err := yaml.Unmarshal(raw, &ut); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !slices.Equal(ut.RuleFiles, []string{"rules.yaml"}) {
			t.Errorf("%s: rule_files is %v, want [rules.yaml] (the test copies the shipped rules there)", f, ut.RuleFiles)
		}
		for _, c := range ut.Tests {
			for _, a := range c.AlertRule {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !fires[r.Alert] {
				t.Errorf("alert %s: no test case in testdata/ where it fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("alert %s: no test case in testdata/ where it must not fire", r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs a summary and a description", r.Alert)
			}
			if !strings.Contains(string(readme), "| `"+r.Alert+"` |") {
				t.Errorf("alert %s: no row in docs/operations.md's alert table", r.Alert)
			}
		}
	}
	if alerts < 6 {
		t.Errorf("found %d alerts in config/prometheus/rules.yaml; the check would be vacuous", alerts)
	}
}

// TestJobLabel: the rules' job="..." selectors name the job the shipped ServiceMonitor gives
// its targets (the value of the Service label its jobLabel names), or GrantkeeperDown would
// fire forever and GrantkeeperNoLeader never.
func TestJobLabel(t *testing.T) {
	// The ServiceMonitor ships in config/prometheus, the metrics Service in config/default.
	var raw []byte
	for _, f := range []string{filepath.Join("config", "prometheus", "monitor.yaml"), filepath.Join("config", "default", "metrics_service.yaml")} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		raw = append(append(raw, b...), "\n---\n"...)
	}
	var monitorJobLabel string
	var serviceLabels map[string]string
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				JobLabel string `json:"jobLabel"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("monitor or Service YAML: %v", err)
		}
		switch obj.Kind {
		case "ServiceMonitor":
			monitorJobLabel = obj.Spec.JobLabel
		case "Service":
			serviceLabels = obj.Metadata.Labels
		}
	}
	if monitorJobLabel == "" {
		t.Fatal("the ServiceMonitor sets no jobLabel: the job would be the Service's name, which kustomize's namePrefix changes")
	}
	job := serviceLabels[monitorJobLabel]
	if job == "" {
		t.Fatalf("the Service has no label %q (the ServiceMonitor's jobLabel)", monitorJobLabel)
	}
	_, rf := shippedRules(t)
	selectors := 0
	re := regexp.MustCompile(`job\s*=~?\s*"([^"]*)"`)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, m := range re.FindAllStringSubmatch(r.Expr, -1) {
				selectors++
				if m[1] != job {
					t.Errorf("rule %s%s selects job=%q; the ServiceMonitor produces job=%q", r.Alert, r.Record, m[1], job)
				}
			}
		}
	}
	if selectors == 0 {
		t.Error("no rule selects a job: GrantkeeperDown and GrantkeeperNoLeader must")
	}
}
