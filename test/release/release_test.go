//go:build releasetest

// Package release checks what `make release` writes. Only `make release-test` builds it (the
// releasetest tag), so `make test` neither runs nor skips it: cross-compiling eight binaries
// twice is many minutes of CPU. GRANTKEEPER_RELEASE_DIST=<dir> (with VERSION) checks a dist/
// already written instead of building two.
package release

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"sigs.k8s.io/yaml"
)

const (
	testVersion = "v0.0.0-test"
	imageRepo   = "registry.example.com/gk/grantkeeper"
	sidecarRepo = "registry.example.com/gk/grantkeeper-metadata-server"
)

func root(t *testing.T) string {
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func makeRelease(t *testing.T, dist string) {
	t.Helper()
	cmd := exec.Command("make", "-s", "release", "VERSION="+testVersion, "DIST="+dist, "IMAGE_REPO="+imageRepo, "METADATA_IMAGE_REPO="+sidecarRepo)
	cmd.Dir = root(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
}

// TestRelease builds the release twice and checks every claim of docs/installation.md#releases.
func TestRelease(t *testing.T) {
	version, dist := testVersion, os.Getenv("GRANTKEEPER_RELEASE_DIST")
	images := map[string]string{"grantkeeper": imageRepo, "grantkeeper-metadata-server": sidecarRepo}
	if dist != "" {
		version = os.Getenv("VERSION")
		images = map[string]string{"grantkeeper": os.Getenv("IMAGE_REPO"), "grantkeeper-metadata-server": os.Getenv("METADATA_IMAGE_REPO")}
	} else {
		dist = t.TempDir()
		makeRelease(t, dist)
		again := t.TempDir()
		makeRelease(t, again)
		t.Run("reproducible", func(t *testing.T) {
			a, b := tree(t, dist), tree(t, again)
			for f, sum := range a {
				if b[f] != sum {
					t.Errorf("%s differs between two builds of the same commit", f)
				}
			}
			if len(a) != len(b) {
				t.Errorf("two builds wrote %d and %d files", len(a), len(b))
			}
		})
	}
	t.Run("images", func(t *testing.T) { checkImages(t, dist, version, images) })
	t.Run("plugin", func(t *testing.T) { checkPlugin(t, dist, version) })
	t.Run("checksums", func(t *testing.T) { checkSums(t, dist, version) })
	t.Run("krew", func(t *testing.T) { checkKrew(t, dist, version) })
	t.Run("chart and install.yaml", func(t *testing.T) { checkChart(t, dist, version, images) })
	t.Run("sboms", func(t *testing.T) { checkSBOMs(t, dist) })
}

// tree is every file under dir and its sha256.
func tree(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sha(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// runVersion runs bin --version where this machine can and checks it names want.
func runVersion(t *testing.T, bin, arch, want string) {
	t.Helper()
	if arch != runtime.GOARCH || runtime.GOOS != "linux" {
		return
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("%s --version: %v %q, want it to contain %q", filepath.Base(bin), err, out, want)
	}
}

func checkImages(t *testing.T, dist, version string, repos map[string]string) {
	digests, err := os.ReadFile(filepath.Join(dist, "images", "digests.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for dir, repo := range repos {
		entry := map[string]string{"grantkeeper": "manager", "grantkeeper-metadata-server": "metadata-server"}[dir]
		p, err := layout.FromPath(filepath.Join(dist, "images", dir))
		if err != nil {
			t.Fatalf("%s: not an OCI layout: %v", dir, err)
		}
		top, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		tm, err := top.IndexManifest()
		if err != nil || len(tm.Manifests) != 1 {
			t.Fatalf("%s: want one index in the layout, got %v %v", dir, tm, err)
		}
		if tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != version {
			t.Errorf("%s: layout names %v, want tag %s", dir, tm.Manifests[0].Annotations, version)
		}
		if !strings.Contains(string(digests), repo+":"+version+" "+tm.Manifests[0].Digest.String()) {
			t.Errorf("digests.txt does not list %s:%s at %s:\n%s", repo, version, tm.Manifests[0].Digest, digests)
		}
		idx, err := top.ImageIndex(tm.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		archs := map[string]bool{}
		for _, m := range im.Manifests {
			if m.Platform == nil || m.Platform.OS != "linux" {
				t.Errorf("%s: manifest without a linux platform: %+v", dir, m)
				continue
			}
			arch := m.Platform.Architecture
			archs[arch] = true
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Architecture != arch || cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/"+entry {
				t.Errorf("%s/%s: config arch %s user %s entrypoint %v", dir, arch, cf.Architecture, cf.Config.User, cf.Config.Entrypoint)
			}
			bin := extract(t, img, entry)
			f, err := elf.NewFile(bytes.NewReader(bin))
			if err != nil {
				t.Fatalf("%s/%s: /%s is not ELF: %v", dir, arch, entry, err)
			}
			if f.Machine != elfMachine[arch] {
				t.Errorf("%s/%s: /%s is for %s", dir, arch, entry, f.Machine)
			}
			path := filepath.Join(t.TempDir(), entry)
			if err := os.WriteFile(path, bin, 0o755); err != nil {
				t.Fatal(err)
			}
			runVersion(t, path, arch, entry+" "+version)
		}
		if !archs["amd64"] || !archs["arm64"] || len(archs) != 2 {
			t.Errorf("%s: index holds %v, want amd64 and arm64", dir, archs)
		}
	}
}

func extract(t *testing.T, img v1.Image, name string) []byte {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("/%s not in the image: %v", name, err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

var pluginPlatforms = []struct{ os, arch string }{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"}, {"windows", "arm64"}}

func archiveName(version, goos, arch string) string {
	if goos == "windows" {
		return "kubectl-grantkeeper_" + version + "_" + goos + "_" + arch + ".zip"
	}
	return "kubectl-grantkeeper_" + version + "_" + goos + "_" + arch + ".tar.gz"
}

// unpack returns the one binary in a plugin archive.
func unpack(t *testing.T, path string) (string, []byte) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".zip") {
		z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil || len(z.File) != 1 {
			t.Fatalf("%s: %v, %d files", path, err, len(z.File))
		}
		rc, err := z.File[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		data, _ := io.ReadAll(rc)
		return z.File[0].Name, data
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(tr)
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("%s: more than one file", path)
	}
	if h.Mode&0o111 == 0 {
		t.Errorf("%s: %s is not executable (%o)", path, h.Name, h.Mode)
	}
	return h.Name, data
}

func checkPlugin(t *testing.T, dist, version string) {
	for _, p := range pluginPlatforms {
		name, bin := unpack(t, filepath.Join(dist, archiveName(version, p.os, p.arch)))
		r := bytes.NewReader(bin)
		var got string
		switch p.os {
		case "linux":
			f, err := elf.NewFile(r)
			if err != nil {
				t.Fatalf("linux/%s: %v", p.arch, err)
			}
			got = map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine]
		case "darwin":
			f, err := macho.NewFile(r)
			if err != nil {
				t.Fatalf("darwin/%s: %v", p.arch, err)
			}
			got = map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
		case "windows":
			f, err := pe.NewFile(r)
			if err != nil {
				t.Fatalf("windows/%s: %v", p.arch, err)
			}
			got = map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_ARM64: "arm64"}[f.Machine]
			if name != "kubectl-grantkeeper.exe" {
				t.Errorf("windows archive holds %s", name)
			}
		}
		if got != p.arch {
			t.Errorf("%s/%s archive holds a binary for %q", p.os, p.arch, got)
		}
		if p.os == "linux" {
			path := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(path, bin, 0o755); err != nil {
				t.Fatal(err)
			}
			runVersion(t, path, p.arch, "kubectl-grantkeeper "+version)
		}
	}
}

func checkSums(t *testing.T, dist, version string) {
	f, err := os.Open(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		sum, name, ok := strings.Cut(s.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", s.Text())
		}
		b, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Errorf("SHA256SUMS lists %s: %v", name, err)
			continue
		}
		if sha(b) != sum {
			t.Errorf("SHA256SUMS: %s has sha256 %s, listed %s", name, sha(b), sum)
		}
		listed[name] = true
	}
	want := []string{"install.yaml", "krew/grantkeeper.yaml", "images/digests.txt", "sbom/manager.cdx.json", "sbom/metadata-server.cdx.json", "sbom/kubectl-grantkeeper.cdx.json", "grantkeeper-" + strings.TrimPrefix(version, "v") + ".tgz"}
	for _, p := range pluginPlatforms {
		want = append(want, archiveName(version, p.os, p.arch))
	}
	for _, w := range want {
		if !listed[w] {
			t.Errorf("SHA256SUMS does not list %s", w)
		}
	}
}

func tool(t *testing.T, env string) string {
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("$%s is not set: run make release-test", env)
	}
	return p
}

func checkKrew(t *testing.T, dist, version string) {
	manifest := filepath.Join(dist, "krew", "grantkeeper.yaml")
	// krew's own validation (the krew-index CI's validate-krew-manifest), without the
	// install it would download for.
	if out, err := exec.Command(tool(t, "VALIDATE_KREW_MANIFEST"), "-manifest", manifest, "-skip-install").CombinedOutput(); err != nil {
		t.Errorf("validate-krew-manifest: %v\n%s", err, out)
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Spec struct {
			Version   string
			Platforms []struct {
				Selector struct{ MatchLabels map[string]string }
				URI      string
				SHA256   string
			}
		}
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Spec.Version != version || len(m.Spec.Platforms) != len(pluginPlatforms) {
		t.Errorf("krew manifest: version %s, %d platforms", m.Spec.Version, len(m.Spec.Platforms))
	}
	for _, p := range m.Spec.Platforms {
		want := archiveName(version, p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"])
		if !strings.HasSuffix(p.URI, "/"+version+"/"+want) {
			t.Errorf("krew manifest: %v downloads %s, want .../%s/%s", p.Selector.MatchLabels, p.URI, version, want)
		}
		a, err := os.ReadFile(filepath.Join(dist, want))
		if err != nil {
			t.Errorf("krew manifest names %s: %v", want, err)
			continue
		}
		if sha(a) != p.SHA256 {
			t.Errorf("krew manifest: %s sha256 %s, the archive's is %s", want, p.SHA256, sha(a))
		}
	}
	// krew itself installs the plugin from this machine's archive, checking the sha256,
	// and the installed plugin runs.
	if runtime.GOOS != "linux" {
		return
	}
	krewRoot := t.TempDir()
	cmd := exec.Command(tool(t, "KREW"), "install", "--manifest="+manifest, "--archive="+filepath.Join(dist, archiveName(version, "linux", runtime.GOARCH)))
	cmd.Env = append(os.Environ(), "KREW_ROOT="+krewRoot)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("krew install: %v\n%s", err, out)
	}
	runVersion(t, filepath.Join(krewRoot, "bin", "kubectl-grantkeeper"), runtime.GOARCH, "kubectl-grantkeeper "+version)
}

func checkChart(t *testing.T, dist, version string, repos map[string]string) {
	chart := filepath.Join(dist, "grantkeeper-"+strings.TrimPrefix(version, "v")+".tgz")
	out, err := exec.Command(tool(t, "HELM"), "show", "chart", chart).CombinedOutput()
	if err != nil {
		t.Fatalf("helm show chart: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "appVersion: "+version+"\n") {
		t.Errorf("chart's appVersion is not %s:\n%s", version, out)
	}
	out, err = exec.Command(tool(t, "HELM"), "template", "grantkeeper", chart, "-n", "grantkeeper-system").CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	install, err := os.ReadFile(filepath.Join(dist, "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range repos {
		img := repo + ":" + version
		for what, text := range map[string]string{"the chart's defaults": string(out), "install.yaml": string(install)} {
			if !strings.Contains(text, img+"\n") && !strings.Contains(text, img+"\"") {
				t.Errorf("%s do not run %s", what, img)
			}
		}
	}
}

func checkSBOMs(t *testing.T, dist string) {
	for bin, dep := range map[string]string{"manager": "sigs.k8s.io/controller-runtime", "metadata-server": "", "kubectl-grantkeeper": "github.com/spf13/cobra"} {
		b, err := os.ReadFile(filepath.Join(dist, "sbom", bin+".cdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		var bom struct {
			BOMFormat string `json:"bomFormat"`
			Metadata  struct {
				Component struct{ Name string }
			}
			Components []struct{ Name string }
		}
		if err := json.Unmarshal(b, &bom); err != nil {
			t.Fatalf("%s SBOM: %v", bin, err)
		}
		if bom.BOMFormat != "CycloneDX" || !strings.Contains(bom.Metadata.Component.Name, "grantkeeper") {
			t.Errorf("%s SBOM: format %q, component %q", bin, bom.BOMFormat, bom.Metadata.Component.Name)
		}
		found := dep == ""
		for _, c := range bom.Components {
			found = found || c.Name == dep
		}
		if !found {
			t.Errorf("%s SBOM does not list %s", bin, dep)
		}
	}
}
