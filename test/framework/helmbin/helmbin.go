// Package helmbin finds the helm binary the Makefile builds into bin/ (helm-<version>).
package helmbin

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Find returns $HELM when set (the Makefile exports it), else the newest bin/helm-* in root.
func Find(root string) (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		if _, err := os.Stat(h); err != nil {
			return "", fmt.Errorf("HELM=%s: %w (make %s builds it)", h, err, h)
		}
		return h, nil
	}
	found, _ := filepath.Glob(filepath.Join(root, "bin", "helm-*"))
	if len(found) == 0 {
		return "", fmt.Errorf("no helm in %s: run 'make test' or 'make helm'", filepath.Join(root, "bin"))
	}
	sort.Strings(found)
	return found[len(found)-1], nil
}
