// Package localcluster runs a real Kubernetes control plane on loopback for the demo and
// the end-to-end suite: etcd and kube-apiserver (through envtest's process management) and
// kube-controller-manager (so owner references are garbage-collected as in a real cluster).
// It writes kubeconfigs for an admin and for grantkeeper's ServiceAccount identity, so the
// manager runs with exactly the RBAC in config/rbac.
package localcluster

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ManagerUser is the identity the manager authenticates as: the ServiceAccount that
// config/default creates (kubebuilder's names for a project called grantkeeper).
const (
	ManagerNamespace      = "grantkeeper-system"
	ManagerServiceAccount = "grantkeeper-controller-manager"
	ManagerUser           = "system:serviceaccount:" + ManagerNamespace + ":" + ManagerServiceAccount
)

// Cluster is a running local control plane.
type Cluster struct {
	// Dir holds the kubeconfigs.
	Dir string
	// AdminKubeconfig authenticates as cluster admin (system:masters).
	AdminKubeconfig string
	// ManagerKubeconfig authenticates as ManagerUser, subject to RBAC.
	ManagerKubeconfig string
	// BinDir holds kube-apiserver, etcd, kubectl and kube-controller-manager.
	BinDir string
	Host   string

	// CAFile is the API server's CA certificate (PEM).
	CAFile string

	env       *envtest.Environment
	kcm       *exec.Cmd
	scheduler *exec.Cmd
	reaper    *exec.Cmd
	inCluster bool
}

// Options for StartWith.
type Options struct {
	// InCluster readies the control plane for Pods that talk to it, as the manager's Pods do:
	// kube-apiserver listens on BindAddress:SecurePort (SecurePort 0: a free port; an address Pods can reach, e.g. the
	// local node's bridge gateway) and admits Pods with the ServiceAccount plugin (which
	// envtest turns off), so each Pod gets a projected ServiceAccount token that the kubelet
	// requests through TokenRequest (envtest configures the issuer and signing key);
	// StartControllerManager then also runs the controllers Deployments and ServiceAccounts
	// need, and kube-scheduler.
	InCluster   bool
	BindAddress string
	SecurePort  int
}

// Start starts etcd and kube-apiserver from binDir, writing kubeconfigs into dir.
func Start(binDir, dir string) (*Cluster, error) { return StartWith(binDir, dir, Options{}) }

// freePort is a port nothing listens on at address now.
func freePort(address string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", address, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartWith is Start with options.
func StartWith(binDir, dir string, o Options) (*Cluster, error) {
	// kube-controller-manager is checked when started: a control plane without it serves
	// API-only tests (RBAC, forbidden checks).
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run 'make k8s-binaries'", b, binDir)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, BinDir: binDir, inCluster: o.InCluster}
	// envtest picks a free port only on loopback (with no port set it replaces Address by
	// 127.0.0.1), and Pods need BindAddress: take a free port there, and start again on
	// another should a process bind it first (the window between our probe and the API
	// server's bind).
	var err error
	for attempt := 1; ; attempt++ {
		// A start may take 2 minutes (envtest's default is 20 s): make test starts several
		// control planes at once on two cores, and at load 20 test/pods' did not start in time.
		c.env = &envtest.Environment{BinaryAssetsDirectory: binDir, ControlPlaneStartTimeout: 2 * time.Minute}
		if o.InCluster {
			api := c.env.ControlPlane.GetAPIServer()
			api.SecureServing.Address = o.BindAddress
			port := o.SecurePort
			if port == 0 {
				if port, err = freePort(o.BindAddress); err != nil {
					return nil, err
				}
			}
			api.SecureServing.Port = strconv.Itoa(port)
			api.Configure().Disable("disable-admission-plugins")
			// No kube-proxy: admission webhooks are called at a Service's endpoint (from the
			// EndpointSlices the controller manager writes), not at its ClusterIP.
			api.Configure().Set("enable-aggregator-routing", "true")
		}
		if _, err = c.env.Start(); err == nil {
			break
		}
		_ = c.env.Stop()
		if !o.InCluster || o.SecurePort != 0 || attempt == 3 {
			return nil, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
		}
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	c.Host = c.env.Config.Host
	c.CAFile = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(c.CAFile, c.env.Config.CAData, 0o600); err != nil {
		return nil, err
	}

	if c.AdminKubeconfig, err = c.writeKubeconfig("admin.kubeconfig", envtest.User{Name: "admin", Groups: []string{"system:masters"}}); err != nil {
		return nil, err
	}
	if c.ManagerKubeconfig, err = c.writeKubeconfig("manager.kubeconfig", envtest.User{Name: ManagerUser,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ManagerNamespace, "system:authenticated"}}); err != nil {
		return nil, err
	}
	c.reaper = StartReaper()
	ok = true
	return c, nil
}

// StartControllerManager starts kube-controller-manager. Start it after installing CRDs:
// its garbage collector only rediscovers new resource types every 30 seconds.
func (c *Cluster) StartControllerManager(log io.Writer) error {
	if _, err := os.Stat(filepath.Join(c.BinDir, "kube-controller-manager")); err != nil {
		return fmt.Errorf("kube-controller-manager not found in %s: run 'make k8s-binaries'", c.BinDir)
	}
	// kube-controller-manager runs only the controllers the product relies on: garbage
	// collection (derived Secrets go with their grant) and namespace deletion.
	kcmConfig, err := c.writeKubeconfig("kube-controller-manager.kubeconfig", envtest.User{Name: "system:kube-controller-manager", Groups: []string{"system:masters"}})
	if err != nil {
		return err
	}
	controllers := "garbagecollector,namespace"
	var extra []string
	if c.inCluster {
		// Deployments make ReplicaSets make Pods; every namespace gets its "default"
		// ServiceAccount and the kube-root-ca.crt ConfigMap that projected tokens mount; the
		// node lifecycle controller lifts the not-ready taint the kubelet registers with.
		controllers += ",deployment-controller,replicaset-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,node-lifecycle-controller,endpointslice-controller"
		extra = append(extra, "--root-ca-file="+c.CAFile)
	}
	c.kcm = exec.Command(filepath.Join(c.BinDir, "kube-controller-manager"), append([]string{
		"--kubeconfig=" + kcmConfig, "--controllers=" + controllers,
		"--secure-port=0", "--leader-elect=false", "--use-service-account-credentials=false"}, extra...)...)
	c.kcm.Stdout, c.kcm.Stderr = log, log
	c.kcm.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.kcm.Start(); err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	if c.inCluster {
		// Pods of Deployments need a scheduler to be bound to the node.
		sched := filepath.Join(c.BinDir, "kube-scheduler")
		if _, err := os.Stat(sched); err != nil {
			return fmt.Errorf("kube-scheduler not found in %s: run 'make k8s-binaries'", c.BinDir)
		}
		schedConfig, err := c.writeKubeconfig("kube-scheduler.kubeconfig", envtest.User{Name: "system:kube-scheduler", Groups: []string{"system:masters"}})
		if err != nil {
			return err
		}
		c.scheduler = exec.Command(sched, "--kubeconfig="+schedConfig, "--secure-port=0", "--leader-elect=false")
		c.scheduler.Stdout, c.scheduler.Stderr = log, log
		c.scheduler.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.scheduler.Start(); err != nil {
			return fmt.Errorf("starting kube-scheduler: %w", err)
		}
	}
	if c.reaper != nil {
		_ = c.reaper.Process.Kill()
		_, _ = c.reaper.Process.Wait()
	}
	c.reaper = StartReaper()
	return nil
}

// writeKubeconfig provisions a user (a client certificate) and writes its kubeconfig.
func (c *Cluster) writeKubeconfig(name string, user envtest.User) (string, error) {
	u, err := c.env.ControlPlane.AddUser(user, nil)
	if err != nil {
		return "", err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, name)
	return path, os.WriteFile(path, kc, 0o600)
}

// Kubectl returns a kubectl command acting as cluster admin.
func (c *Cluster) Kubectl(args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(c.BinDir, "kubectl"), append([]string{"--kubeconfig=" + c.AdminKubeconfig}, args...)...)
}

// Stop stops kube-controller-manager, kube-apiserver and etcd.
func (c *Cluster) Stop() {
	for _, p := range []*exec.Cmd{c.scheduler, c.kcm} {
		if p != nil && p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}
	if err := c.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster: stopping control plane:", err)
	}
	if c.reaper != nil {
		_ = c.reaper.Process.Kill()
		_, _ = c.reaper.Process.Wait()
	}
}

// StartReaper guards against leaked child processes: if this process dies without cleaning
// up (SIGKILL, a panic, a test timeout), a small shell in its own process group kills the
// children that exist now once this process is gone. Kill the returned command on a clean exit.
func StartReaper() *exec.Cmd {
	children := ChildPIDs(os.Getpid())
	if len(children) == 0 {
		return nil
	}
	// Polls once a second: a watchdog, not synchronisation.
	script := `p=$1; shift; while kill -0 "$p" 2>/dev/null; do sleep 1; done; kill -9 "$@" 2>/dev/null`
	args := []string{"-c", script, "reaper", strconv.Itoa(os.Getpid())}
	for _, pid := range children {
		args = append(args, strconv.Itoa(pid))
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cmd.Start() != nil {
		return nil
	}
	return cmd
}

// ChildPIDs lists the processes whose parent is pid.
func ChildPIDs(pid int) []int {
	var out []int
	procs, _ := procfs.AllProcs()
	for _, p := range procs {
		// A process may exit between the listing and the read: skip it.
		if st, err := p.Stat(); err == nil && st.PPID == pid {
			out = append(out, p.PID)
		}
	}
	return out
}
