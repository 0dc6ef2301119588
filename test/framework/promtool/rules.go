package promtool

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// RuleGroups reads the shipped PrometheusRule (config/prometheus/rules.yaml under root) and
// returns its groups as a plain Prometheus rule file, which promtool and prometheus load
// (a PrometheusRule keeps them under spec, for the Prometheus Operator).
func RuleGroups(root string) ([]byte, error) {
	p := filepath.Join(root, "config", "prometheus", "rules.yaml")
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var pr struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if pr.Kind != "PrometheusRule" || len(pr.Spec.Groups) == 0 {
		return nil, fmt.Errorf("%s: want a PrometheusRule with spec.groups, got kind %q and %d groups", p, pr.Kind, len(pr.Spec.Groups))
	}
	return yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
}
