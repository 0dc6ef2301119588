// Package promtool finds Prometheus's binaries for tests: promtool (rule checks and rule unit
// tests) and prometheus. They come from PATH or from Debian's prometheus package, which is
// downloaded with apt-get and unpacked into the repository's bin/ rather than installed:
// installing the package would also start a Prometheus server as a system service and add
// a system user, neither of which a test should leave behind.
package promtool

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// debDir is where the package's binaries are kept, under the repository root.
const debDir = "bin/debian-prometheus"

// Find returns the path of binary ("promtool" or "prometheus"), or a reason why there is
// none. root is the repository root; log receives a line when the package is fetched.
func Find(root, binary string, log io.Writer) (path, reason string) {
	if p, err := exec.LookPath(binary); err == nil {
		return p, ""
	}
	unpacked := filepath.Join(root, debDir, "usr", "bin", binary)
	if _, err := os.Stat(unpacked); err == nil {
		// An older version of this package kept the whole tree, Go example modules included.
		_ = os.RemoveAll(filepath.Join(root, debDir, "usr", "share"))
		return unpacked, ""
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", binary + " is not on PATH and apt-get is not available to fetch Debian's prometheus package"
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return "", binary + " is not on PATH and dpkg-deb is not available to unpack Debian's prometheus package"
	}
	fmt.Fprintf(log, "promtool: fetching Debian's prometheus package for %s with apt-get\n", binary)
	if reason := fetch(filepath.Join(root, debDir)); reason != "" {
		return "", reason
	}
	if _, err := os.Stat(unpacked); err != nil {
		return "", fmt.Sprintf("Debian's prometheus package has no usr/bin/%s", binary)
	}
	return unpacked, ""
}

// fetch downloads the package and unpacks it into dest, atomically: a concurrent or
// interrupted fetch never leaves a half-unpacked tree behind.
func fetch(dest string) string {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err.Error()
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".debian-prometheus-")
	if err != nil {
		return err.Error()
	}
	defer os.RemoveAll(tmp)
	// apt-get drops privileges to _apt for downloads; the temporary directory must let it write.
	if err := os.Chmod(tmp, 0o777); err != nil {
		return err.Error()
	}
	download := func() (string, error) {
		return run(tmp, "apt-get", "download", "-qq", "prometheus")
	}
	if out, err := download(); err != nil {
		// No package lists yet (a fresh machine): refresh them, which needs root.
		if os.Geteuid() != 0 {
			return fmt.Sprintf("apt-get download prometheus failed and refreshing the package lists needs root: %v: %s", err, out)
		}
		if out, err := run(tmp, "apt-get", "update", "-qq"); err != nil {
			return fmt.Sprintf("apt-get update failed: %v: %s", err, out)
		}
		if out, err := download(); err != nil {
			return fmt.Sprintf("apt-get download prometheus failed: %v: %s", err, out)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "prometheus_*.deb"))
	if len(debs) != 1 {
		return fmt.Sprintf("apt-get download prometheus left %d .deb files, want 1", len(debs))
	}
	tree := filepath.Join(tmp, "tree")
	if out, err := run(tmp, "dpkg-deb", "-x", debs[0], tree); err != nil {
		return fmt.Sprintf("dpkg-deb -x %s: %v: %s", filepath.Base(debs[0]), err, out)
	}
	// Keep only usr/bin: the package's documentation ships Go example modules (a go.mod under
	// usr/share/doc), which controller-gen's ./... would then try to load.
	keep := filepath.Join(tmp, "keep")
	if err := os.MkdirAll(filepath.Join(keep, "usr"), 0o755); err != nil {
		return err.Error()
	}
	if err := os.Rename(filepath.Join(tree, "usr", "bin"), filepath.Join(keep, "usr", "bin")); err != nil {
		return err.Error()
	}
	if err := os.Rename(keep, dest); err != nil && !exists(dest) {
		return err.Error()
	}
	return ""
}

func run(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
