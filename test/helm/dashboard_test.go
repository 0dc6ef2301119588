package helm

import (
	"os"
	"path/filepath"
	"testing"
)

// TestGrafanaDashboard: off by default; when enabled, one ConfigMap that Grafana's sidecar
// picks up (the grafana_dashboard label) holding config/grafana/grantkeeper.json unchanged.
func TestGrafanaDashboard(t *testing.T) {
	const key = "ConfigMap/grantkeeper-system/grantkeeper-dashboard"
	if h := template(t); h[key] != nil {
		t.Error("the dashboard ConfigMap renders by default; it must be opt-in (grafanaDashboard.enabled)")
	}
	run(t, helm, "lint", "--strict", "charts/grantkeeper", "--set", "grafanaDashboard.enabled=true")
	cm := template(t, "--set", "grafanaDashboard.enabled=true,grafanaDashboard.annotations.grafana_folder=OAuth")[key]
	if cm == nil {
		t.Fatal("grafanaDashboard.enabled=true renders no dashboard ConfigMap")
	}
	if v := cm.GetLabels()["grafana_dashboard"]; v != "1" {
		t.Errorf("label grafana_dashboard=%q, want \"1\" (what Grafana's sidecar selects by default)", v)
	}
	if v := cm.GetAnnotations()["grafana_folder"]; v != "OAuth" {
		t.Errorf("annotation grafana_folder=%q, want OAuth", v)
	}
	want, err := os.ReadFile(filepath.Join(root, "config", "grafana", "grantkeeper.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := field(t, cm, "data", "grantkeeper.json"); got != string(want) && got.(string)+"\n" != string(want) {
		t.Errorf("the ConfigMap's grantkeeper.json is not config/grafana/grantkeeper.json")
	}
	other := template(t, "--set", "grafanaDashboard.enabled=true,grafanaDashboard.namespace=monitoring")
	if other["ConfigMap/monitoring/grantkeeper-dashboard"] == nil {
		t.Error("grafanaDashboard.namespace=monitoring does not put the ConfigMap in monitoring")
	}
}
