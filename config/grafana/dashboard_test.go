// Package grafana checks the Grafana dashboard grantkeeper ships (grantkeeper.json here, and
// the Helm chart's copy): every PromQL expression parses with Prometheus's own parser and
// reads only series the manager exports, so the dashboard cannot rot when a metric is
// renamed; and it has the panels the README promises.
package grafana

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/grantkeeper/grantkeeper/internal/metrics"
	"github.com/grantkeeper/grantkeeper/test/framework/dashboard"
)

// exported is every series name the manager serves: grantkeeper's own (internal/metrics),
// whatever else is registered on controller-runtime's registry (Go and process collectors,
// controller-runtime's own) and Prometheus's per-target up.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{"up": true}
	for _, n := range metrics.Names() {
		names[n] = true
	}
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

func load(t *testing.T) *dashboard.Dashboard {
	t.Helper()
	d, err := dashboard.Load("grantkeeper.json")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestExpressionsParseAndReadExportedSeries(t *testing.T) {
	known := exported(t)
	d := load(t)
	n, problems := d.Check(func(name string) bool { return known[name] })
	for _, p := range problems {
		t.Error(p)
	}
	if n < 15 {
		t.Errorf("checked %d expressions; the dashboard has more, so the check is not reading them", n)
	}
	if len(d.Referenced()) < 8 {
		t.Errorf("the dashboard reads only %v", d.Referenced())
	}
}

// TestTheCheckCatchesRot: the check above fails for a misspelt metric, a syntax error and a
// selector without a metric name, so it cannot pass vacuously.
func TestTheCheckCatchesRot(t *testing.T) {
	known := exported(t)
	for _, expr := range []string{
		`sum(rate(grantkeeper_token_request_total[$__rate_interval]))`, // "request", not "requests"
		`max by (namespace, name (grantkeeper_grant_ready)`,
		`count({namespace=~"$namespace"})`,
	} {
		d := &dashboard.Dashboard{Panels: []dashboard.Panel{{Title: "rotten", Targets: []dashboard.Target{{Expr: expr, RefID: "A"}}}}}
		if _, problems := d.Check(func(name string) bool { return known[name] }); len(problems) == 0 {
			t.Errorf("%s passed the check", expr)
		}
	}
}

// TestPanels: the panels the issue asks for, each described, on the ${datasource} variable,
// none overlapping on Grafana's 24-column grid.
func TestPanels(t *testing.T) {
	d := load(t)
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title (the sidecar and links key on them)")
	}
	var titles []string
	occupied := map[[2]int]string{}
	raw, err := os.ReadFile("grantkeeper.json")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(`"uid": "prometheus"`)) {
		t.Error("a panel names a fixed data source uid; use ${datasource}")
	}
	for _, p := range d.AllPanels() {
		titles = append(titles, p.Title)
		if p.Description == "" {
			t.Errorf("panel %q has no description saying what it shows", p.Title)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is off the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := occupied[[2]int{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				occupied[[2]int{x, y}] = p.Title
			}
		}
	}
	for _, want := range []string{"Grants by state", "Access tokens: time to expiry", "Token requests by result",
		"Token request latency by result", "Failures by reason", "Revocations over time", "Grants"} {
		if !slices.ContainsFunc(titles, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no panel %q; panels: %q", want, titles)
		}
	}
}

// TestChartCopy: the Helm chart ships this file unchanged (make manifests copies it).
func TestChartCopy(t *testing.T) {
	a, err := os.ReadFile("grantkeeper.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "charts", "grantkeeper", "files", "grafana", "grantkeeper.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("charts/grantkeeper/files/grafana/grantkeeper.json differs from config/grafana/grantkeeper.json: run make manifests")
	}
}
