package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestPluginArchivesAreReproducible: the same binary gives byte-identical archives (no
// timestamps, names or owners from the machine), and the manifest names their sha256.
func TestPluginArchivesAreReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubectl-grantkeeper")
	if err := os.WriteFile(bin, []byte("binary"), 0o700); err != nil {
		t.Fatal(err)
	}
	var archives []Archive
	for _, p := range []Platform{{"linux", "arm64"}, {"windows", "amd64"}} {
		a, err := writePluginArchive(dir, "v1.0.0", p, bin)
		if err != nil {
			t.Fatal(err)
		}
		// Another moment, another mode on disk: the same archive.
		if err := os.Chtimes(bin, time.Now(), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := writePluginArchive(dir, "v1.0.0", p, bin)
		if err != nil {
			t.Fatal(err)
		}
		if a.SHA256 != b.SHA256 {
			t.Errorf("%s: two archives of one binary differ", p)
		}
		archives = append(archives, a)
	}
	m, err := KrewManifest("v1.0.0", "https://example.com/dl/", archives)
	if err != nil {
		t.Fatal(err)
	}
	var got krewPlugin
	if err := yaml.Unmarshal(m, &got); err != nil {
		t.Fatal(err)
	}
	if u := got.Spec.Platforms[1].URI; u != "https://example.com/dl/v1.0.0/kubectl-grantkeeper_v1.0.0_windows_amd64.zip" {
		t.Errorf("windows URI %s", u)
	}
	if got.Spec.Platforms[0].SHA256 != archives[0].SHA256 || got.Spec.Platforms[1].Bin != "kubectl-grantkeeper" {
		t.Errorf("manifest platforms %+v", got.Spec.Platforms)
	}
}

// TestStageChart: the release's chart copy has the version and the released images, and
// a values.yaml whose image lines moved is an error rather than a chart with old defaults.
func TestStageChart(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "chart")
	if err := stageChart("../../charts/grantkeeper", dst, "v1.2.3", "ghcr.io/x/gk", "ghcr.io/x/gk-md"); err != nil {
		t.Fatal(err)
	}
	chart, _ := os.ReadFile(filepath.Join(dst, "Chart.yaml"))
	values, _ := os.ReadFile(filepath.Join(dst, "values.yaml"))
	for _, want := range []string{"\nversion: 1.2.3\n", "\nappVersion: \"v1.2.3\"\n"} {
		if !strings.Contains(string(chart), want) {
			t.Errorf("Chart.yaml lacks %q:\n%s", want, chart)
		}
	}
	for _, want := range []string{"\n  repository: ghcr.io/x/gk\n", "\n    repository: ghcr.io/x/gk-md\n"} {
		if !strings.Contains(string(values), want) {
			t.Errorf("values.yaml lacks %q", want)
		}
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "Chart.yaml"), []byte("version: 0.1.0\nappVersion: \"0.1.0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "values.yaml"), []byte("image:\n  repository: somewhere/else\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := stageChart(src, filepath.Join(t.TempDir(), "c"), "v1.2.3", "a", "b"); err == nil {
		t.Error("a values.yaml without the image lines was staged")
	}
}
