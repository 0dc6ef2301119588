// Command release writes the binaries' part of `make release` into -dist, reproducibly (the
// same commit and version give the same bytes; test/release builds twice and compares):
//
//   - images/grantkeeper and images/grantkeeper-metadata-server: one OCI image index each
//     (linux/amd64 and linux/arm64) as an OCI image layout, built like `make image`;
//   - images/digests.txt: each index's reference and digest;
//   - kubectl-grantkeeper_<version>_<os>_<arch>.tar.gz (.zip on windows) for linux, darwin
//     and windows on amd64 and arm64;
//   - krew/grantkeeper.yaml: the krew plugin manifest naming those archives' URLs and sha256;
//   - -chart-out: a copy of the chart whose version and appVersion are the release's and
//     whose default images are the released ones (the Makefile packages it).
//
// install.yaml, the chart package, the SBOMs and SHA256SUMS are the Makefile's.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/grantkeeper/grantkeeper/hack/image/imagebuild"
)

// Platform is one GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "_" + p.Arch }

// ImagePlatforms are the architectures every image index holds.
var ImagePlatforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}

// PluginPlatforms are the plugin archives' platforms (what krew users run).
var PluginPlatforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// semver is the VERSION make release accepts: a tag like v1.2.3 or v1.2.3-rc.1.
var semver = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

type config struct {
	version, dist, root          string
	imageRepo, metadataImageRepo string
	downloadURL, chart, chartOut string
	jobs                         int
}

func main() {
	var c config
	flag.StringVar(&c.version, "version", "", "The release's version, vX.Y.Z (the images' tag and what --version prints).")
	flag.StringVar(&c.dist, "dist", "dist", "Directory to write into.")
	flag.StringVar(&c.root, "root", ".", "The module's directory.")
	flag.StringVar(&c.imageRepo, "image-repo", "ghcr.io/grantkeeper/grantkeeper", "The manager image's repository.")
	flag.StringVar(&c.metadataImageRepo, "metadata-image-repo", "ghcr.io/grantkeeper/grantkeeper-metadata-server", "The metadata-server sidecar image's repository.")
	flag.StringVar(&c.downloadURL, "download-url", "https://github.com/grantkeeper/grantkeeper/releases/download", "Where the release's archives are downloaded from: <url>/<version>/<archive> (the krew manifest's URIs).")
	flag.StringVar(&c.chart, "chart", "charts/grantkeeper", "The chart to copy.")
	flag.StringVar(&c.chartOut, "chart-out", "", "Where to write the release's copy of the chart (none when empty).")
	flag.IntVar(&c.jobs, "jobs", 2, "Binaries compiled at once.")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if !semver.MatchString(c.version) {
		return fmt.Errorf("VERSION %q is not a release version like v1.2.3", c.version)
	}
	build := filepath.Join(c.dist, ".build")
	for _, d := range []string{build, filepath.Join(c.dist, "images"), filepath.Join(c.dist, "krew")} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	old, _ := filepath.Glob(filepath.Join(c.dist, "kubectl-grantkeeper_*"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	root, err := filepath.Abs(c.root)
	if err != nil {
		return err
	}

	var targets []imagebuild.Target
	bin := func(p Platform, name string) string {
		if p.OS == "windows" {
			name += ".exe"
		}
		return filepath.Join(build, p.String(), name)
	}
	for _, p := range ImagePlatforms {
		for _, pkg := range []string{"manager", "metadata-server"} {
			targets = append(targets, imagebuild.Target{Dir: root, Pkg: "./cmd/" + pkg, Out: bin(p, pkg), OS: p.OS, Arch: p.Arch, Version: c.version})
		}
	}
	for _, p := range PluginPlatforms {
		targets = append(targets, imagebuild.Target{Dir: root, Pkg: "./cmd/kubectl-grantkeeper", Out: bin(p, "kubectl-grantkeeper"), OS: p.OS, Arch: p.Arch, Version: c.version})
	}
	if err := compileAll(targets, c.jobs); err != nil {
		return err
	}

	// Images.
	var digests strings.Builder
	for _, im := range []struct{ repo, binary string }{{c.imageRepo, "manager"}, {c.metadataImageRepo, "metadata-server"}} {
		var opts []imagebuild.Options
		for _, p := range ImagePlatforms {
			opts = append(opts, imagebuild.Options{Binary: bin(p, im.binary), Arch: p.Arch})
		}
		ref := im.repo + ":" + c.version
		dir := filepath.Join(c.dist, "images", filepath.Base(im.repo))
		d, err := imagebuild.WriteIndex(dir, c.version, opts)
		if err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		fmt.Fprintf(&digests, "%s %s %s\n", ref, d, filepath.Base(dir))
		fmt.Printf("image %s (%s) written to %s\n", ref, d, dir)
	}
	if err := os.WriteFile(filepath.Join(c.dist, "images", "digests.txt"), []byte(digests.String()), 0o644); err != nil {
		return err
	}

	// Plugin archives and the krew manifest.
	var archives []Archive
	for _, p := range PluginPlatforms {
		a, err := writePluginArchive(c.dist, c.version, p, bin(p, "kubectl-grantkeeper"))
		if err != nil {
			return err
		}
		archives = append(archives, a)
		fmt.Printf("plugin %s written to %s\n", p, a.Path)
	}
	manifest, err := KrewManifest(c.version, c.downloadURL, archives)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.dist, "krew"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dist, "krew", "grantkeeper.yaml"), manifest, 0o644); err != nil {
		return err
	}

	if c.chartOut != "" {
		if err := stageChart(c.chart, c.chartOut, c.version, c.imageRepo, c.metadataImageRepo); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
	}
	return os.RemoveAll(build)
}

// compileAll runs up to jobs `go build`s at once: linking is single-threaded, so two
// overlap well on two cores.
func compileAll(targets []imagebuild.Target, jobs int) error {
	sem := make(chan struct{}, max(jobs, 1))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = imagebuild.Compile(t)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
