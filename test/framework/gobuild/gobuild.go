// Package gobuild gives the suites that run this repository's commands as processes (the
// manager, the kubectl plugin, the metadata server, examples/adc) their binaries. make test
// builds them once into the directory named by GRANTKEEPER_TEST_BINS before the suites run,
// so each is linked once rather than once per suite; without it (go test run directly, or a
// command make test does not prebuild) the suite builds its own with `go build`.
package gobuild

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
)

// EnvDir names the directory of prebuilt binaries, each named after its package's last path
// element (bin/test/manager for ./cmd/manager); relative to the repository root unless
// absolute. Whoever sets it builds them from the same tree.
const EnvDir = "GRANTKEEPER_TEST_BINS"

// Build makes out the binary of pkg (a package path relative to root, "./cmd/manager"): a
// symbolic link to the prebuilt one if there is one, otherwise `go build -o out pkg` in root.
func Build(root, pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if dir := os.Getenv(EnvDir); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		prebuilt := filepath.Join(dir, path.Base(pkg))
		if fi, err := os.Stat(prebuilt); err == nil && fi.Mode().IsRegular() {
			return os.Symlink(prebuilt, out)
		}
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
	}
	return nil
}
