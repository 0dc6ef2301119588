// Package k8sbin locates the repository and the Kubernetes binaries `make k8s-binaries`
// builds. The version lives in one place, hack/k8s-version, read by the Makefile, the build
// script and this package alike.
package k8sbin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RepoRoot is the directory of grantkeeper's go.mod, found upwards from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/grantkeeper/grantkeeper\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repository root (go.mod of github.com/grantkeeper/grantkeeper) not found above the working directory")
		}
		dir = parent
	}
}

// Version is the Kubernetes version in root/hack/k8s-version.
func Version(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "hack", "k8s-version"))
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if !strings.HasPrefix(v, "v1.") {
		return "", fmt.Errorf("hack/k8s-version holds %q, not a Kubernetes version such as v1.36.3", v)
	}
	return v, nil
}

// Dir is where the binaries are: $KUBEBUILDER_ASSETS when set (the Makefile sets it), else
// root/bin/k8s/<version>.
func Dir(root string) (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, nil
	}
	v, err := Version(root)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "k8s", v), nil
}
