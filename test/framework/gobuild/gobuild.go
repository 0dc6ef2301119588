// Package gobuild gives the suites that run this repository's commands as processes (the
// manager, the kubectl plugin, the metadata server, examples/adc) or pack them into images
// (those and examples/pause, examples/consumer) their binaries. make test builds them once
// into the directory named by GRANTKEEPER_TEST_BINS before the suites run, so each is linked
// once rather than once per suite; without it (go test run directly, or a command make test
// does not prebuild) the suite builds its own, with the same flags (imagebuild.GoBuild), so
// it shares its compiles with make build's and make test's.
//
// make test builds them the way images are built (imagebuild.BuildEnv and BuildFlags: static,
// stripped), so one binary serves a suite that runs it on the host and one that packs it.
package gobuild

import (
	"debug/elf"
	"os"
	"path"
	"path/filepath"

	"github.com/grantkeeper/grantkeeper/hack/image/imagebuild"
)

// EnvDir names the directory of prebuilt binaries, each named after its package's last path
// element (bin/test/manager for ./cmd/manager); relative to the repository root unless
// absolute. Whoever sets it builds them from the same tree.
const EnvDir = "GRANTKEEPER_TEST_BINS"

// Build makes out the binary of pkg (a package path relative to root, "./cmd/manager"): a
// symbolic link to the prebuilt one if there is one, otherwise imagebuild.GoBuild in root
// (static, -trimpath: the compile configuration of make build and make test's binaries).
func Build(root, pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if prebuilt := prebuilt(root, pkg); prebuilt != "" {
		return os.Symlink(prebuilt, out)
	}
	return imagebuild.GoBuild(root, pkg, out)
}

// Image makes out a static linux binary of pkg for an image (imagebuild.Write): a symbolic
// link to the prebuilt one if there is one and it is static, otherwise imagebuild.GoBuild.
func Image(root, pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if prebuilt := prebuilt(root, pkg); prebuilt != "" && static(prebuilt) {
		return os.Symlink(prebuilt, out)
	}
	return imagebuild.GoBuild(root, pkg, out)
}

// prebuilt is pkg's binary in GRANTKEEPER_TEST_BINS, or "".
func prebuilt(root, pkg string) string {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		return ""
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	p := filepath.Join(dir, path.Base(pkg))
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return p
}

// static: an ELF executable with no program interpreter (no dynamic loader, so it runs in
// an image without libc).
func static(file string) bool {
	f, err := elf.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
