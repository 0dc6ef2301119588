// Package imports checks the import graph: the binaries we ship must not link the test
// infrastructure (fake Google, local control plane, leak checker...), which lives under
// test/framework so that the boundary is a path anyone can see.
package imports

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/grantkeeper/grantkeeper"

func TestShippedBinariesLinkNoTestPackage(t *testing.T) {
	readSources(t)
	for _, cmd := range []string{"./cmd/manager", "./cmd/kubectl-grantkeeper", "./cmd/metadata-server"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../"+strings.TrimPrefix(cmd, "./")).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", cmd, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 50 {
			t.Fatalf("go list -deps %s listed only %d packages; the check would be vacuous", cmd, len(deps))
		}
		for _, d := range deps {
			if forbidden(d) {
				t.Errorf("%s links %s: shipped binaries must not import test infrastructure", cmd, d)
			}
		}
	}
}

// forbidden reports packages a shipped binary must not link.
func forbidden(pkg string) bool {
	return strings.HasPrefix(pkg, module+"/test/") || strings.HasPrefix(pkg, module+"/hack/") ||
		pkg == "testing" || strings.HasPrefix(pkg, "testing/") ||
		pkg == "sigs.k8s.io/controller-runtime/pkg/envtest"
}

func TestForbiddenCatchesTestPackages(t *testing.T) {
	for pkg, want := range map[string]bool{
		module + "/test/framework/fakegoogle":        true,
		module + "/hack/bench":                       true,
		"testing":                                    true,
		"sigs.k8s.io/controller-runtime/pkg/envtest": true,
		module + "/internal/tokenclient":             false,
		"net/http":                                   false,
	} {
		if got := forbidden(pkg); got != want {
			t.Errorf("forbidden(%q) = %v, want %v", pkg, got, want)
		}
	}
}

// readSources reads every Go file and go.mod: go test caches a result by the files the test
// opened, and `go list` runs in another process, so without this an edited import would be
// answered from the cache.
func readSources(t *testing.T) {
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bin" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod") {
			_, err = os.ReadFile(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
