// Package dashboard reads grantkeeper's Grafana dashboard (config/grafana/grantkeeper.json):
// its panels and their PromQL, with Grafana's variables replaced so that Prometheus's own
// parser (and Prometheus) can take the expressions. The dashboard test, the end-to-end
// Prometheus test and hack/dashboard-plot share it.
package dashboard

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Dashboard is the part of Grafana's JSON model read here.
type Dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is one panel; a row's Panels hold what it collapses.
type Panel struct {
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	GridPos     GridPos  `json:"gridPos"`
	Targets     []Target `json:"targets"`
	Panels      []Panel  `json:"panels"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

// GridPos places a panel on Grafana's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one query of a panel.
type Target struct {
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Instant      bool   `json:"instant"`
	Format       string `json:"format"`
	RefID        string `json:"refId"`
}

// Variable is a templating variable; a query variable's Query may be label_values(...).
type Variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

// Load reads a dashboard JSON file.
func Load(path string) (*Dashboard, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// AllPanels lists every panel, rows' collapsed panels included, in order.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

var variableRef = regexp.MustCompile(`\$\{?(\w+)(:\w+)?\}?`)

// Expand replaces Grafana's variables in expr: the interval variables by rateInterval (a
// PromQL duration such as "5m") and every other variable (the dashboard's own, all of which
// stand in label matchers) by ".*", which is what "All" selects.
func Expand(expr, rateInterval string) string {
	return variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		name := variableRef.FindStringSubmatch(ref)[1]
		switch name {
		case "__rate_interval", "__interval", "__range":
			return rateInterval
		case "__range_s":
			return "300"
		}
		return ".*"
	})
}

// labelValues matches a query variable's label_values(metric, label) (Grafana's, not PromQL).
var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*$`)

// Selectors are the series selectors of a variable's query (label_values' first argument),
// as PromQL; none for other variable types.
func (v Variable) Selectors() []string {
	q, ok := v.Query.(string)
	if !ok {
		if m, isMap := v.Query.(map[string]any); isMap {
			q, _ = m["query"].(string)
		}
	}
	if m := labelValues.FindStringSubmatch(q); m != nil {
		return []string{m[1]}
	}
	return nil
}

// MetricNames parses expr with Prometheus's parser (stable PromQL: no experimental
// functions) and returns the metric names its selectors read (a selector must name its
// metric, as dashboards should).
func MetricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var problem error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			problem = fmt.Errorf("selector %s names no metric", vs)
			return problem
		}
		names = append(names, name)
		return nil
	})
	return names, problem
}

// Check parses every expression of the dashboard (panels and variables) and reports each one
// that does not parse, or reads a metric that known does not hold. It returns how many
// expressions it checked.
func (d *Dashboard) Check(known func(name string) bool) (int, []string) {
	var problems []string
	checked := 0
	check := func(where, expr string) {
		checked++
		names, err := MetricNames(Expand(expr, "5m"))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q: %v", where, expr, err))
			return
		}
		for _, n := range names {
			if !known(n) {
				problems = append(problems, fmt.Sprintf("%s: %q reads %s, which the manager does not export", where, expr, n))
			}
		}
	}
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			check(fmt.Sprintf("panel %q target %s", p.Title, t.RefID), t.Expr)
		}
	}
	for _, v := range d.Templating.List {
		for _, s := range v.Selectors() {
			check(fmt.Sprintf("variable %s", v.Name), s)
		}
	}
	return checked, problems
}

// Referenced is every metric name the dashboard's expressions read.
func (d *Dashboard) Referenced() []string {
	seen := map[string]bool{}
	var out []string
	d.Check(func(n string) bool {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
		return true
	})
	return out
}

// Flatten is expr on one line, for logs and legends.
func Flatten(expr string) string { return strings.Join(strings.Fields(expr), " ") }
