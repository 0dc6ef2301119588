// Package testenv starts one real control plane (etcd and kube-apiserver built by
// `make k8s-binaries`) per test package, with grantkeeper's CRDs installed, and stops it
// when the package's tests end, failed or not.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grantkeeper/grantkeeper/test/framework/k8sbin"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/test/framework/localcluster"
)

// Env is a running control plane.
type Env struct {
	Config *rest.Config
	Scheme *runtime.Scheme
	// Client talks to the API server directly (no cache) as cluster admin.
	Client client.Client
	// Root is the repository root.
	Root string
	// BinDir holds kube-apiserver, etcd, kubectl and kube-controller-manager.
	BinDir string
}

// Run starts the control plane, stores it in *env, runs the package's tests and stops the
// control plane. Use it from TestMain: os.Exit(testenv.Run(m, &env)).
func Run(m *testing.M, env **Env) int {
	e, stop, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer stop()
	*env = e
	return m.Run()
}

// Start starts a control plane and returns it with its stop function.
func Start() (*Env, func(), error) {
	root, err := k8sbin.RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	bin, err := k8sbin.Dir(root)
	if err != nil {
		return nil, nil, err
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, nil, fmt.Errorf("%s not found in %s: run 'make k8s-binaries' (or 'make test', which builds them)", b, bin)
		}
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(oauthv1alpha1.AddToScheme(scheme))

	te := &envtest.Environment{
		BinaryAssetsDirectory: bin,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
		// envtest's default is 20 s, retried 5 times; make test starts up to four control
		// planes at once on two cores, and beside other work a start took longer (seen at
		// load 29): a slow start is the machine, not a failure of what the suites test.
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", bin, err)
	}
	reaper := localcluster.StartReaper()
	stop := func() {
		if err := te.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stopping control plane:", err)
		}
		if reaper != nil {
			_ = reaper.Process.Kill()
			_, _ = reaper.Process.Wait()
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		stop()
		return nil, nil, err
	}
	return &Env{Config: cfg, Scheme: scheme, Client: c, Root: root, BinDir: bin}, stop, nil
}
